"""The frame and boxes a benchmark runs on: an image file, a real COCO sample, or a rendering."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from edgepose.errors import InputError

CHECKOUT_SAMPLE = Path(__file__).resolve().parents[2] / "tests" / "data" / "coco_val_samples" / "000000196141.jpg"


def find_sample_frame() -> str | None:
    """A real COCO val2017 frame: in a checkout the 640x429 one with several people (tests/data), else the packaged
    sample (edgepose/assets/sample, one person)."""
    if CHECKOUT_SAMPLE.is_file():
        return str(CHECKOUT_SAMPLE)
    from edgepose.assets import SAMPLE_FRAME

    return str(SAMPLE_FRAME) if SAMPLE_FRAME.is_file() else None


def render_frame(width: int = 640, height: int = 480, seed: int = 0) -> np.ndarray:
    """A deterministic (height, width, 3) uint8 BGR scene: textured background and a few stick figures."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    frame = np.stack([(xs * 255 // max(width - 1, 1)), (ys * 255 // max(height - 1, 1)),
                      np.full_like(xs, 96)], axis=-1).astype(np.uint8)
    frame = cv2.add(frame, rng.integers(0, 40, frame.shape, dtype=np.uint8))
    for i in range(4):
        cx, top, size = int(width * (0.15 + 0.23 * i)), int(height * 0.15), int(height * 0.7)
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.circle(frame, (cx, top + size // 10), size // 12, color, -1)
        hip = (cx, top + size // 2)
        cv2.line(frame, (cx, top + size // 5), hip, color, max(size // 20, 2))
        for dx in (-1, 1):
            cv2.line(frame, (cx, top + size // 4), (cx + dx * size // 5, top + size // 3), color, max(size // 40, 2))
            cv2.line(frame, hip, (cx + dx * size // 8, top + size), color, max(size // 30, 2))
    return frame


def load_frame(image: str | os.PathLike | None) -> tuple[np.ndarray, str]:
    """The benchmark frame and where it came from: ``image``, else a COCO sample if present, else a rendering."""
    from edgepose.io import read_image

    path = os.fspath(image) if image is not None else find_sample_frame()
    if path is None:
        return render_frame(), "rendered 640x480 frame (no COCO sample found beside the checkout)"
    if not os.path.isfile(path):
        raise InputError(f"benchmark image not found: {path}")
    return read_image(path), path


def spread_boxes(count: int, frame_shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """``count`` person-shaped (taller than wide) xyxy boxes at seeded random places inside the frame."""
    if count < 0:
        raise InputError(f"person count must be >= 0, got {count}")
    rng = np.random.default_rng(seed)
    height, width = frame_shape[:2]
    h = rng.uniform(0.3, 0.9, count) * height
    w = np.minimum(h * rng.uniform(0.3, 0.6, count), width - 1)
    x1, y1 = rng.uniform(0, width - w), rng.uniform(0, height - h)
    return np.stack([x1, y1, x1 + w, y1 + h], 1).astype(np.float32)
