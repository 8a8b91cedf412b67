"""The artifact writer every deployment output goes through: temp file -> check -> atomic rename -> one line."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from deploy.artifact import human_size, size_of, write_artifact
from edgepose.errors import InputError, ModelError


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


def test_writes_checks_renames_and_logs_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    seen = []
    target = tmp_path / "sub" / "pose.onnx"
    with caplog.at_level(logging.INFO, logger="edgepose.artifacts"), \
            write_artifact(target, "ONNX model", check=seen.append) as tmp:
        assert tmp.endswith(".onnx") and Path(tmp).parent == target.parent  # same folder: the rename is atomic
        Path(tmp).write_bytes(b"x" * 2048)
        assert not target.exists()
    assert target.read_bytes() == b"x" * 2048
    assert seen == [tmp]  # the check saw the finished temporary, before the rename
    lines = [r.getMessage() for r in caplog.records if r.name == "edgepose.artifacts"]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"wrote {target} (ONNX model, 2.0 KiB, ") and lines[0].endswith(" s)")
    assert leftovers(target.parent) == []


def test_a_failing_check_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "pose.onnx"
    target.write_bytes(b"old")

    def refuse(path: str) -> None:
        assert Path(path).read_bytes() == b"new"
        raise ModelError("parity check failed")

    with pytest.raises(ModelError, match="parity"), write_artifact(target, "ONNX model", check=refuse) as tmp:
        Path(tmp).write_bytes(b"new")
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_an_error_or_interrupt_in_the_block_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "pose.engine"
    with pytest.raises(KeyboardInterrupt), write_artifact(target, "engine") as tmp:
        Path(tmp).write_bytes(b"half")
        raise KeyboardInterrupt
    assert not target.exists() and leftovers(tmp_path) == []


def test_folder_artifacts(tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    out.mkdir()  # an empty folder may be the target
    with write_artifact(out, "bundle", folder=True) as tmp:
        (Path(tmp) / "a.txt").write_text("a")
        (Path(tmp) / "b.txt").write_text("bb")
    assert sorted(os.listdir(out)) == ["a.txt", "b.txt"] and size_of(out) == 3
    with pytest.raises(InputError, match="not an empty folder"), write_artifact(out, "bundle", folder=True):
        pytest.fail("the block must not run")  # pragma: no cover
    with pytest.raises(InputError, match="is a folder"), write_artifact(out, "model"):
        pytest.fail("the block must not run")  # pragma: no cover
    with pytest.raises(ModelError), write_artifact(tmp_path / "b2", "bundle", folder=True,
                                                   check=lambda p: (_ for _ in ()).throw(ModelError("bad"))) as tmp:
        (Path(tmp) / "x").write_text("x")
    assert not (tmp_path / "b2").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize(("size", "text"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 2**20, "5.0 MiB"),
                                            (3 * 2**30, "3.0 GiB"), (2**42, "4096.0 GiB")])
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text
