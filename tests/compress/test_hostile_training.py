"""Hostile input to training (issue 15, class 6): a run folder is never silently lost or silently restarted.

Contract: a new run into a folder that holds one is refused (exit 2) unless --overwrite; --resume needs a last.pth;
an interrupted run exits 130 and says what it saved.
"""

from __future__ import annotations

import hashlib
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from compress.config import from_dict
from compress.train.config import TrainConfig
from compress.train.loop import check_out_dir, train
from edgepose.errors import ConfigError
from tests.compress.test_train import config_dict

ROOT = Path(__file__).resolve().parents[2]


def edgepose(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgepose", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def one_line_error(proc: subprocess.CompletedProcess, text: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("edgepose train: error: ") and text in lines[0], lines[0]


@pytest.fixture(scope="module")
def finished(synth, tmp_path_factory) -> tuple[Path, Path]:
    """A finished 1-epoch run and its YAML config."""
    root = tmp_path_factory.mktemp("hostile_train")
    spec = config_dict(synth, root / "run", epochs=1, max_iters_per_epoch=2)
    train(from_dict(TrainConfig, spec), progress=False)
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump(spec))
    return root / "run", config


def test_a_new_run_over_a_finished_one_is_refused(finished):
    run, config = finished
    before = digest(run)
    out = edgepose("train", config, "--no-progress")
    one_line_error(out, f"{run} already holds a run (last.pth, best.pth, log.csv)")
    assert "--resume" in out.stderr and "--overwrite" in out.stderr
    assert digest(run) == before  # log.csv and the checkpoints are untouched


def test_resume_without_a_checkpoint_is_refused(finished, tmp_path):
    _, config = finished
    out = edgepose("train", config, "--resume", "--out-dir", tmp_path / "empty", "--no-progress")
    one_line_error(out, f"nothing to resume: {tmp_path / 'empty' / 'last.pth'} does not exist")
    assert not (tmp_path / "empty").exists()  # nothing was started


def test_resume_and_overwrite_together_are_refused(finished):
    run, config = finished
    before = digest(run)
    out = edgepose("train", config, "--resume", "--overwrite", "--no-progress")
    one_line_error(out, "give one of them")
    assert digest(run) == before


def test_overwrite_starts_over(finished, synth, tmp_path):
    shutil.copytree(finished[0], tmp_path / "run")  # a finished run (not the module's own: it stays untouched)
    spec = config_dict(synth, tmp_path / "run", epochs=1, max_iters_per_epoch=2)
    (tmp_path / "run" / "notes.txt").write_text("old note\n")
    train(from_dict(TrainConfig, spec), progress=False, overwrite=True)
    rows = (tmp_path / "run" / "log.csv").read_text().strip().splitlines()
    assert len(rows) == 2 and rows[1].startswith("1,")  # header + the new run's one epoch, no old rows
    assert not (tmp_path / "run" / "notes.txt").exists()


def test_check_out_dir_contract(tmp_path):
    assert check_out_dir(str(tmp_path / "new"), False, False) is False
    assert check_out_dir(str(tmp_path / "new"), "auto", False) is False  # nothing to continue: start
    (tmp_path / "log.csv").write_text("epoch\n1\n")
    with pytest.raises(ConfigError, match=r"already holds a run \(log.csv\)"):
        check_out_dir(str(tmp_path), False, False)
    with pytest.raises(ConfigError, match="nothing to resume"):
        check_out_dir(str(tmp_path), True, False)
    assert check_out_dir(str(tmp_path), False, True) is False
    (tmp_path / "last.pth").write_bytes(b"")
    assert check_out_dir(str(tmp_path), "auto", False) is True
    assert check_out_dir(str(tmp_path), True, False) is True
    with pytest.raises(ConfigError, match="resume must be"):
        check_out_dir(str(tmp_path), "yes", False)


@pytest.mark.parametrize("sig", [signal.SIGINT])
def test_ctrl_c_exits_130_and_says_what_was_saved(synth, tmp_path, sig):
    spec = config_dict(synth, tmp_path / "run", epochs=50, max_iters_per_epoch=2)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(spec))
    proc = subprocess.Popen([sys.executable, "-m", "edgepose", "train", str(config), "--no-progress"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not (tmp_path / "run" / "last.pth").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "holds the last finished epoch; continue with --resume" in err and "Traceback" not in err
    resumed = edgepose("train", config, "--resume", "--epochs", "2", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr


def test_resume_from_a_checkpoint_without_training_state_is_one_line(finished, synth, tmp_path):
    from compress.checkpoint import load_model, save_checkpoint

    shutil.copytree(finished[0], tmp_path / "run")
    spec = config_dict(synth, tmp_path / "run", epochs=1, max_iters_per_epoch=2)
    model, card, _ = load_model(tmp_path / "run" / "last.pth")
    save_checkpoint(tmp_path / "run" / "last.pth", model, card)  # weights only: no optimizer, scaler, rng, state
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(spec | {"epochs": 2}))
    out = edgepose("train", config, "--resume", "--no-progress")
    one_line_error(out, "cannot resume a run: it has no optimizer, scaler, state, rng")
