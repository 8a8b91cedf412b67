"""Shared fixtures: the real COCO samples and detector in ../shared, and small ONNX models made on the fly."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
COCO_DIR = SHARED / "data" / "coco_val_samples"
YOLOX = SHARED / "models" / "yolox_nano_person" / "yolox_nano_416x416.onnx"


@pytest.fixture(scope="session")
def coco_dir() -> Path:
    """../shared/data/coco_val_samples (always present beside the checkout, CI included)."""
    assert COCO_DIR.is_dir(), f"fixture folder missing: {COCO_DIR}"
    return COCO_DIR


@pytest.fixture(scope="session")
def yolox_path() -> Path:
    """The real pretrained YOLOX-Nano person detector."""
    assert YOLOX.is_file(), f"fixture model missing: {YOLOX}"
    return YOLOX


@pytest.fixture(scope="session")
def synth(tmp_path_factory) -> Path:
    """A small synthetic pose set (24 train, 6 val images) in COCO layout."""
    from compress.data.synthetic import generate

    out = tmp_path_factory.mktemp("synth")
    generate(out, 24, 6, seed=3, progress=False)
    return out
