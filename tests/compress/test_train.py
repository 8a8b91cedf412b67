"""Training on the synthetic set: a run writes its artefacts, resume after a kill is exact, DDP ranks agree."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from compress.checkpoint import load_model, read_checkpoint, save_checkpoint
from compress.config import from_dict
from compress.train.config import TrainConfig
from compress.train.loop import train
from edgepose.errors import CheckpointError, ConfigError, InputError

ROOT = Path(__file__).resolve().parents[2]


def config_dict(root: Path, out: Path, **changes) -> dict:
    base = {
        "card": {"input_size": [96, 128], "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375],
                 "color": "rgb", "codec": "msra", "heatmap_size": [24, 32], "sigma": 1.5, "decode": "dark"},
        "data": {"train_ann": str(root / "annotations/person_keypoints_train.json"),
                 "train_images": str(root / "train"),
                 "val_ann": str(root / "annotations/person_keypoints_val.json"), "val_images": str(root / "val"),
                 "batch_size": 4, "val_batch_size": 8, "workers": 0},
        "model": {"name": "lite_hrnet_tiny"},
        "optim": {"lr": 2e-3, "warmup_iters": 2},
        "epochs": 2, "out_dir": str(out), "seed": 5, "max_iters_per_epoch": 3,
    }
    for key, value in changes.items():
        if isinstance(value, dict):
            base[key] = {**base.get(key, {}), **value}
        else:
            base[key] = value
    return base


def weights_of(path: Path) -> dict:
    return read_checkpoint(path)["state_dict"]


def test_run_writes_checkpoints_logs_and_scores(synth, tmp_path):
    cfg = from_dict(TrainConfig, config_dict(synth, tmp_path / "run", ema_decay=0.9))
    result = train(cfg, progress=False)
    assert result["epoch"] == 2 and 0.0 <= result["AP"] <= 1.0 and result["persons"] > 0
    for name in ("last.pth", "best.pth", "log.csv", "eval/predictions.json"):
        assert (tmp_path / "run" / name).exists(), name
    assert len((tmp_path / "run" / "log.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs
    model, card, payload = load_model(tmp_path / "run" / "last.pth")
    assert card == cfg.model_card() and payload["state"]["iteration"] == 6 and "ema_state_dict" in payload
    out = model(torch.zeros(1, 3, 128, 96))
    assert out["heatmaps"].shape == (1, 17, 32, 24)
    # `edgepose evaluate` on the checkpoint scores exactly what the trainer's last validation scored (EMA weights).
    cli = subprocess.run([sys.executable, "-m", "edgepose", "evaluate", str(tmp_path / "run" / "last.pth"), "--data",
                          str(synth), "--workers", "0", "--out", str(tmp_path / "evaluated")],
                         cwd=ROOT, capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    metrics = json.loads((tmp_path / "evaluated" / "metrics.json").read_text())
    assert metrics["AP"] == pytest.approx(result["AP"], abs=1e-12) and 0 <= metrics["PCK@0.05"] <= 1


def test_resume_after_kill_mid_epoch_is_exact(synth, tmp_path):
    """Kill a run (SIGKILL) during its second epoch, resume it, and compare with an uninterrupted run."""
    whole = from_dict(TrainConfig, config_dict(synth, tmp_path / "whole", epochs=3, max_iters_per_epoch=6))
    train(whole, progress=False)
    spec = config_dict(synth, tmp_path / "killed", epochs=3, max_iters_per_epoch=6)
    (tmp_path / "killed.yaml").write_text(yaml.safe_dump(spec))
    cmd = [sys.executable, "-m", "compress.train.loop", str(tmp_path / "killed.yaml"), "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    last = tmp_path / "killed" / "last.pth"
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.exists(), proc.stderr.read().decode()
    assert read_checkpoint(last)["state"]["epoch"] < 3, "the run finished before it could be killed"
    resumed = subprocess.run(cmd + ["--resume"], cwd=ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    a, b = weights_of(tmp_path / "whole" / "last.pth"), weights_of(last)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"


def test_save_every_resumes_from_the_last_checkpoint_and_drops_later_log_rows(synth, tmp_path, monkeypatch):
    """save_every 2: epoch 3 is logged but not saved; a crash while saving epoch 4 resumes from epoch 2, drops epoch
    3's row, and ends with the uninterrupted run's weights and one row per epoch."""
    import compress.train.loop as loop

    spec = {"epochs": 4, "max_iters_per_epoch": 2, "save_every": 2, "eval_every": 2}
    whole = from_dict(TrainConfig, config_dict(synth, tmp_path / "whole", **spec))
    train(whole, progress=False)
    saved_epochs = []
    real_save = loop.save_checkpoint

    def crash_at_epoch_4(path, model, card, **extra):
        saved_epochs.append(extra["state"]["epoch"])
        if extra["state"]["epoch"] == 4:
            raise KeyboardInterrupt
        real_save(path, model, card, **extra)

    crashed = from_dict(TrainConfig, config_dict(synth, tmp_path / "crashed", **spec))
    monkeypatch.setattr(loop, "save_checkpoint", crash_at_epoch_4)
    with pytest.raises(KeyboardInterrupt):
        train(crashed, progress=False)
    assert saved_epochs == [2, 4]
    log = tmp_path / "crashed" / "log.csv"
    assert [int(float(r.split(",")[0])) for r in log.read_text().splitlines()[1:]] == [1, 2, 3]
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    train(crashed, resume=True, progress=False)
    assert [int(float(r.split(",")[0])) for r in log.read_text().splitlines()[1:]] == [1, 2, 3, 4]
    a, b = weights_of(tmp_path / "whole" / "last.pth"), weights_of(tmp_path / "crashed" / "last.pth")
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"


def test_save_every_must_be_positive(synth, tmp_path):
    with pytest.raises(ConfigError, match="save_every"):
        from_dict(TrainConfig, config_dict(synth, tmp_path / "x", save_every=0))


def test_ddp_two_processes_gloo_agree(synth, tmp_path):
    spec = config_dict(synth, tmp_path / "ddp", epochs=1, max_iters_per_epoch=2)
    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(spec))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                          "29517", "-m", "compress.train.loop", str(tmp_path / "ddp.yaml"), "--no-progress"],
                         cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    notes = (tmp_path / "ddp" / "notes.txt").read_text()
    assert "world_size 2" in notes and notes.strip().endswith("True")


def test_bad_inputs_name_the_problem(synth, tmp_path):
    with pytest.raises(ConfigError, match="unknown key"):
        from_dict(TrainConfig, config_dict(synth, tmp_path, optim={"momentum": 0.9}))
    missing = config_dict(synth, tmp_path, data={"train_ann": str(tmp_path / "nope.json")})
    with pytest.raises(InputError, match="nope.json"):
        train(from_dict(TrainConfig, missing), progress=False)
    wrong = config_dict(synth, tmp_path, card={"heatmap_size": [48, 64]})
    with pytest.raises(ConfigError, match="heatmap_size"):
        train(from_dict(TrainConfig, wrong), progress=False)
    from compress.models import build_model

    other = build_model("lite_hrnet_18", input_size=(96, 128))
    save_checkpoint(tmp_path / "other.pth", other, from_dict(TrainConfig, config_dict(synth, tmp_path)).model_card())
    payload = torch.load(tmp_path / "other.pth", weights_only=False)
    payload["arch"] = {"name": "lite_hrnet_tiny", "num_keypoints": 17, "input_size": (96, 128), "head": "heatmap"}
    torch.save(payload, tmp_path / "mislabelled.pth")
    with pytest.raises(CheckpointError, match="does not match"):
        load_model(tmp_path / "mislabelled.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "other.pth").read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated"):
        load_model(tmp_path / "cut.pth")


def test_model_init_loads_our_checkpoint_and_refuses_others(synth, tmp_path):
    from compress.models import build_model
    from compress.train.loop import build_for

    cfg = from_dict(TrainConfig, config_dict(synth, tmp_path))
    source = build_model("lite_hrnet_tiny", input_size=(96, 128))
    save_checkpoint(tmp_path / "init.pth", source, cfg.model_card())
    init = config_dict(synth, tmp_path, model={"init": str(tmp_path / "init.pth")})
    started = build_for(from_dict(TrainConfig, init), cfg.model_card())
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), started.state_dict().values(),
                                                 strict=True))
    other = build_model("lite_hrnet_18", input_size=(96, 128))
    save_checkpoint(tmp_path / "other.pth", other, cfg.model_card())
    with pytest.raises(CheckpointError, match="does not match"):
        build_for(from_dict(TrainConfig, config_dict(synth, tmp_path, model={"init": str(tmp_path / "other.pth")})),
                  cfg.model_card())


def test_distillation_runs_under_the_same_trainer(synth, tmp_path):
    teacher = train(from_dict(TrainConfig, config_dict(synth, tmp_path / "teacher", epochs=1, max_iters_per_epoch=2)),
                    progress=False)
    spec = config_dict(synth, tmp_path / "student", epochs=1, max_iters_per_epoch=2,
                       distill={"teacher": teacher["last"], "alpha": 0.5})
    result = train(from_dict(TrainConfig, spec), progress=False)
    assert result["epoch"] == 1 and (tmp_path / "student" / "last.pth").exists()
    assert read_checkpoint(tmp_path / "student" / "last.pth")["config"]["distill"]["alpha"] == 0.5
    (tmp_path / "plain.yaml").write_text(yaml.safe_dump(config_dict(synth, tmp_path / "x")))
    out = subprocess.run([sys.executable, "-m", "edgepose", "distill", str(tmp_path / "plain.yaml")], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 2 and "no 'distill' section" in out.stderr and "Traceback" not in out.stderr
    mismatched = config_dict(synth, tmp_path / "bad", card={"input_size": [64, 128], "heatmap_size": [16, 32]},
                             distill={"teacher": teacher["last"]})
    with pytest.raises(ConfigError, match="same crop"):
        train(from_dict(TrainConfig, mismatched), progress=False)


def test_same_file_links_the_checkpoint_and_survives_the_next_save(tmp_path, monkeypatch):
    """best.pth is the last.pth of its epoch (a hard link, or a copy where links fail); replacing last.pth later
    (save_checkpoint renames a new file over it) leaves best.pth with the old bytes."""
    import os

    from compress.checkpoint import same_file

    last, best = tmp_path / "last.pth", tmp_path / "best.pth"
    last.write_bytes(b"epoch 1")
    same_file(last, best)
    assert best.read_bytes() == b"epoch 1" and os.stat(best).st_ino == os.stat(last).st_ino
    (tmp_path / "new").write_bytes(b"epoch 2")
    os.replace(tmp_path / "new", last)
    assert best.read_bytes() == b"epoch 1" and last.read_bytes() == b"epoch 2"

    def no_links(src, dst):
        raise OSError("links not supported")

    monkeypatch.setattr(os, "link", no_links)
    same_file(last, best)
    assert best.read_bytes() == b"epoch 2" and os.stat(best).st_ino != os.stat(last).st_ino
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pth", "last.pth"]  # no temp file left
