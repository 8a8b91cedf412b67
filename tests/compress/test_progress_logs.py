"""Logs fit where they go (issue 17): bars on a terminal; on a pipe one line per epoch or stage, no '\\r' updates."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import yaml

from compress.progress import bar, interactive, line
from tests.compress.test_train import config_dict

ROOT = Path(__file__).resolve().parents[2]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_draws_only_on_a_terminal(monkeypatch, capsys):
    assert not interactive(io.StringIO()) and interactive(FakeTerminal())
    assert list(bar(range(3), desc="x")) == [0, 1, 2]  # stderr is captured by pytest: not a terminal
    assert capsys.readouterr().err == ""
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert list(bar(range(3), desc="drawn")) == [0, 1, 2]
    assert "drawn" in terminal.getvalue()
    assert list(bar(range(3), desc="off", enabled=False)) == [0, 1, 2] and "off" not in terminal.getvalue()
    line("one line")
    line("not shown", enabled=False)
    assert capsys.readouterr().out == "one line\n"


def test_training_on_a_pipe_logs_one_line_per_epoch(synth, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(config_dict(synth, tmp_path / "run", epochs=2, max_iters_per_epoch=2)))
    out = subprocess.run([sys.executable, "-m", "edgepose", "train", str(config)], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "\r" not in out.stdout + out.stderr  # no bar redraws in a log file
    epochs = [ln for ln in out.stdout.splitlines() if ln.startswith("epoch ")]
    assert [ln.split(":")[0] for ln in epochs] == ["epoch 1/2", "epoch 2/2"]
    assert all("loss " in ln and "val AP " in ln for ln in epochs), epochs


def test_synthetic_generation_on_a_pipe_logs_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "edgepose", "data", "synth", "--out", str(tmp_path / "s"),
                          "--train", "6", "--val", "2"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "\r" not in out.stdout + out.stderr
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("synth:")]
    assert len(lines) == 1 and lines[0].startswith("synth: 8 images rendered in "), out.stdout


def test_run_log_widens_when_validation_starts_after_the_first_epoch(tmp_path):
    """eval_every > 1: the first rows have no AP; the row that brings it widens the file instead of dropping it."""
    import csv

    from compress.train.logs import RunLog

    log = RunLog(str(tmp_path), enabled=True)
    log.write({"epoch": 1, "train_loss": 0.5})
    log.write({"epoch": 2, "train_loss": 0.4, "AP": 0.25, "note": "not a number"})
    log.write({"epoch": 3, "train_loss": 0.3})
    log.close()
    with open(tmp_path / "log.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert [r["AP"] for r in rows] == ["", "0.25", ""] and "note" not in rows[0]


def test_run_log_treats_an_empty_file_as_new(tmp_path):
    """A run stopped between creating log.csv and writing its header leaves an empty file: resuming writes the
    header and the row instead of failing on the missing header."""
    from compress.train.logs import RunLog

    (tmp_path / "log.csv").write_text("")
    log = RunLog(str(tmp_path))
    log.drop_after(0)
    log.write({"epoch": 1, "train_loss": 0.5})
    log.close()
    assert (tmp_path / "log.csv").read_text().splitlines() == ["epoch,train_loss", "1,0.5"]
