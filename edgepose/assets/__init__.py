"""Files that ship with the runtime: the default pose model, the default person detector and a sample frame.

Each sits beside its LICENSE and a README giving its provenance. ``edgepose predict`` uses the first two when no
``--model`` / ``--detector`` is given, so a fresh install runs on real people with no download.
"""

from __future__ import annotations

from pathlib import Path

from edgepose.errors import ModelError

ASSETS = Path(__file__).resolve().parent
DEFAULT_POSE_MODEL = ASSETS / "pose" / "blazepose_lite_coco17.onnx"
DEFAULT_DETECTOR = ASSETS / "detector" / "yolox_nano_416x416.onnx"
SAMPLE_FRAME = ASSETS / "sample" / "000000000785.jpg"


def _packaged(path: Path, what: str) -> str:
    if not path.is_file():
        raise ModelError(f"the packaged {what} is missing ({path}): reinstall edgepose, or give the file explicitly")
    return str(path)


def default_pose_model() -> str:
    """Path of the packaged pose model (BlazePose lite, COCO-17 heatmaps, card embedded; modest accuracy)."""
    return _packaged(DEFAULT_POSE_MODEL, "default pose model")


def default_detector() -> str:
    """Path of the packaged person detector (YOLOX-Nano 416x416, COCO-trained)."""
    return _packaged(DEFAULT_DETECTOR, "default person detector")


def sample_frame() -> str:
    """Path of the packaged sample frame (a COCO val2017 photo of one person)."""
    return _packaged(SAMPLE_FRAME, "sample frame")
