"""``edgepose predict --detector-size``: the packaged detector at a smaller input, in process (no subprocess)."""

from __future__ import annotations

import json
import shutil

import pytest

from edgepose.cli import main


def test_detector_size_finds_the_person(tmp_path, coco_dir) -> None:
    """The one-person COCO sample through the packaged models with the detector at 256: its one person."""
    image = tmp_path / "000000000785.jpg"
    shutil.copy(coco_dir / image.name, image)
    out = tmp_path / "out"
    assert main(["predict", str(image), "--out", str(out), "--no-draw", "--detector-size", "256"]) == 0
    poses = json.loads((out / "predictions.json").read_text())
    assert len(poses) == 1 and poses[0]["score"] > 0


@pytest.mark.parametrize("extra,message", [
    (["--detector-size", "250"], "multiple"),
    (["--detector-size", "256", "--boxes", "b.json"], "--detector-size"),
])
def test_detector_size_mistakes(tmp_path, coco_dir, capsys, extra, message) -> None:
    (tmp_path / "b.json").write_text("{}")
    image = coco_dir / "000000000785.jpg"
    code = main(["predict", str(image), "--out", str(tmp_path / "out"), "--no-draw",
                 *[str(tmp_path / a) if a == "b.json" else a for a in extra]])
    assert code != 0 and message in capsys.readouterr().err
    assert not (tmp_path / "out" / "predictions.json").exists()
