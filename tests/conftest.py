"""Shared fixtures: the real COCO samples (tests/data) and the packaged detector, and small models made on the fly."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from edgepose.assets import DEFAULT_DETECTOR, DEFAULT_POSE_MODEL

COCO_DIR = Path(__file__).resolve().parent / "data" / "coco_val_samples"  # README.md there: provenance, licences
YOLOX = DEFAULT_DETECTOR


@pytest.fixture(scope="session", autouse=True)
def edgepose_cache(tmp_path_factory):
    """EDGEPOSE_CACHE_DIR in a temp folder for the whole session (and its subprocesses): tests never write the
    user's ~/.cache/edgepose (the ONNX Runtime backend caches batch-rewritten models there)."""
    folder = tmp_path_factory.mktemp("edgepose_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EDGEPOSE_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="session", autouse=True)
def interruptible_children():
    """Ctrl-C tests send SIGINT to child processes. A shell without job control starts background jobs with SIGINT
    ignored (``cmd &`` in a script, as some CI runners do), and an ignored signal stays ignored across exec: the
    children would never see it. Give this process Python's own handler back so that they start with the default."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield


@pytest.fixture(scope="session")
def coco_dir() -> Path:
    """tests/data/coco_val_samples: four COCO val2017 images, their keypoints and detector boxes."""
    assert COCO_DIR.is_dir(), f"fixture folder missing: {COCO_DIR}"
    return COCO_DIR


@pytest.fixture(scope="session")
def yolox_path() -> Path:
    """The real pretrained YOLOX-Nano person detector (packaged: edgepose/assets/detector)."""
    assert YOLOX.is_file(), f"fixture model missing: {YOLOX}"
    return YOLOX


@pytest.fixture(scope="session")
def blazepose_path() -> Path:
    """The packaged default pose model (BlazePose lite, real pretrained weights; edgepose/assets/pose)."""
    assert DEFAULT_POSE_MODEL.is_file(), f"packaged model missing: {DEFAULT_POSE_MODEL}"
    return DEFAULT_POSE_MODEL


@pytest.fixture(scope="session")
def synth(tmp_path_factory) -> Path:
    """A small synthetic pose set (24 train, 6 val images) in COCO layout."""
    from compress.data.synthetic import generate

    out = tmp_path_factory.mktemp("synth")
    generate(out, 24, 6, seed=3, progress=False)
    return out
