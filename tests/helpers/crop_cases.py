"""Crop comparison helpers shared by the CUDA runtime tests: cards, random rotated boxes, frames, tolerance.

Crop tolerance, in grey levels (de-normalised: value * std + mean, i.e. 1/255 of the [0, 1] pixel range):
OpenCV rounds each bilinear sample to a uint8 level, and so do the reference and the kernel, so they agree exactly
except where float32 vs float64 arithmetic (about 0.015 levels on a 1280-wide frame) moves a sample across a
rounding tie: those pixels differ by exactly one level. Asserted: max difference <= 1 level + 1e-3 (float32 LUT),
and at most 0.5% of values differ at all (measured worst: 0.08% on uniform noise, 0.01% on a COCO photo). Borders
need no extra allowance: a neighbour outside the frame reads 0 in all three, and the same bound holds there.
"""

from __future__ import annotations

import numpy as np

from edgepose.affine import Affine
from edgepose.card import ModelCard
from edgepose.io import read_image

MAX_LEVELS = 1.0 + 1e-3
MAX_SHARE_OFF = 0.005


def make_card(codec: str = "msra", color: str = "rgb") -> ModelCard:
    """A 192x256 ImageNet-normalised card with the given crop mapping (codec) and channel order."""
    return ModelCard(input_size=(192, 256), mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375),
                     color=color, codec=codec, heatmap_size=(48, 64))


def grey(batch: np.ndarray, card: ModelCard) -> np.ndarray:
    """Normalised (N, 3, H, W) values back to 0-255 grey levels, float64."""
    return batch.astype(np.float64) * np.array(card.std)[:, None, None] + np.array(card.mean)[:, None, None]


def random_affine(rng: np.random.Generator, frame_shape, n: int, card: ModelCard, rotate: bool = True) -> Affine:
    """Boxes from 30% outside the top-left to 90% across, 1 px + 5-60% of the frame, rotated up to 45 degrees."""
    height, width = frame_shape[:2]
    x1, y1 = rng.uniform(-0.3 * width, 0.9 * width, n), rng.uniform(-0.3 * height, 0.9 * height, n)
    w, h = 1 + rng.uniform(0.05, 0.6, n) * width, 1 + rng.uniform(0.05, 0.6, n) * height
    boxes = np.stack([x1, y1, x1 + w, y1 + h], 1)
    rotation = rng.uniform(-45, 45, n) if rotate else None
    return Affine.from_boxes(boxes, card.input_size, card.bbox_padding, udp=card.codec == "udp", rotation=rotation)


def assert_same_crops(got: np.ndarray, want: np.ndarray, card: ModelCard) -> None:
    """Within one grey level everywhere, and equal in all but MAX_SHARE_OFF of the values. Float16 batches get
    their own rounding on top: float16 spacing is <= 2^-9 for |v| < 4 (all of ImageNet normalisation's range), so
    the two roundings add <= 2^-9 * max(std) ~ 0.12 grey levels where a level differs."""
    diff = np.abs(grey(got, card) - grey(want, card))
    limit = MAX_LEVELS + (2.0**-9 * max(card.std) if np.float16 in (got.dtype, want.dtype) else 0.0)
    assert diff.max() <= limit, f"max difference {diff.max():.4f} grey levels"
    share = float((diff > 1e-3).mean())
    assert share <= MAX_SHARE_OFF, f"{share:.4%} of values differ by a level"


def frames(coco_dir) -> dict[str, np.ndarray]:
    """Uniform noise (the hardest case for rounding ties), a real COCO photo, and a 5x7 frame (extreme zoom)."""
    rng = np.random.default_rng(0)
    return {"noise": rng.integers(0, 256, (480, 640, 3), dtype=np.uint8),
            "coco": read_image(coco_dir / "000000196141.jpg"),
            "tiny": rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)}
