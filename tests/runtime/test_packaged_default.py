"""A real model out of the box: `edgepose predict` with no --model and no --detector uses the packaged BlazePose-lite
pose model and YOLOX-Nano detector, and scores its recorded AP on the real COCO samples through `edgepose eval`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Measured with this test's commands (2-vCPU EPYC, ONNX Runtime CPU): 11 of the 12 annotated persons found.
PACKAGED_AP = {"plain": 0.4572, "flip": 0.4874}


def edgepose(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgepose", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("flip", [False, True])
def test_predict_with_no_model_and_no_detector_scores_the_recorded_ap(coco_dir, tmp_path, flip):
    out = tmp_path / "out"
    predicted = edgepose("predict", coco_dir, "--coco", coco_dir / "test_coco.json", "--out", out, "--no-draw",
                         *(["--flip"] if flip else []))
    assert predicted.returncode == 0, predicted.stderr
    assert "using the packaged pose model (BlazePose lite" in predicted.stderr
    assert "11 poses from 4/4 inputs" in predicted.stdout
    scored = edgepose("eval", "--pred", out / "predictions.json", "--gt", coco_dir / "test_coco.json",
                      "--json", tmp_path / "metrics.json")
    assert scored.returncode == 0, scored.stderr
    ap = json.loads((tmp_path / "metrics.json").read_text())["AP"]
    assert ap == pytest.approx(PACKAGED_AP["flip" if flip else "plain"], abs=5e-4)


def test_your_model_with_no_detector_uses_the_packaged_detector(coco_dir, blazepose_path, tmp_path):
    image = coco_dir / "000000196141.jpg"  # several people
    out = edgepose("predict", image, "--model", blazepose_path, "--out", tmp_path / "o", "--no-draw")
    assert out.returncode == 0, out.stderr
    assert "packaged pose model" not in out.stderr
    poses = json.loads((tmp_path / "o" / "predictions.json").read_text())
    assert len(poses) >= 3  # the detector found the people (no --boxes, no --detector)


def test_a_card_without_a_model_is_refused(tmp_path):
    out = edgepose("predict", tmp_path, "--card", tmp_path / "c.yaml", "--out", tmp_path / "o")
    assert out.returncode == 2 and "--card describes your model: give it with --model" in out.stderr
    assert not (tmp_path / "o").exists()
