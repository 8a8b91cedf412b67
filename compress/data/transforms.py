"""Top-down training augmentation math: pure numpy functions of (centre, scale, keypoints, rng).

The geometry follows MMPose 1.x's COCO top-down pipeline (``mmpose/datasets/transforms/common_transforms.py`` and
``topdown_transforms.py``), whose configs (e.g. ``td-hm_hrnet-w32_8xb64-210e_coco-256x192``) run
``GetBBoxCenterScale -> RandomFlip -> RandomHalfBody -> RandomBBoxTransform -> TopdownAffine`` with the transforms'
default arguments; ``AugmentConfig()`` holds those defaults. Two deliberate differences:

- the flip is composed into the crop affine (``x' = W - 1 - x`` in crop pixels) instead of mirroring the whole frame,
  so the frame -> crop matrix stays exact under the pixel convention of ``edgepose.affine`` (MMPose mirrors boxes
  with ``w - x`` but keypoints with ``w - 1 - x``). Shift and rotation are symmetric, so the distribution of crops
  is the same;
- an optional colour jitter (brightness / contrast / saturation, torchvision ``ColorJitter`` semantics) that
  MMPose's COCO configs do not use; ``color_jitter=0`` turns it off.

Centre and scale are (2,) float64 arrays in frame pixels; scale is the crop window's (width, height).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgepose.errors import InputError

# COCO-17 halves, as MMPose's coco.py dataset meta (upper_body_ids / lower_body_ids).
UPPER_BODY = tuple(range(11))
LOWER_BODY = tuple(range(11, 17))


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation; the defaults are MMPose 1.x's (RandomFlip, RandomHalfBody, RandomBBoxTransform).

    ``AugmentConfig()`` is the training set-up, ``AugmentConfig(enabled=False)`` the evaluation one (no randomness:
    the crop is exactly the runtime's ``Cropper.affine(box)``).
    """

    flip_prob: float = 0.5  # RandomFlip(prob=0.5)
    scale_range: tuple[float, float] = (0.5, 1.5)  # RandomBBoxTransform(scale_factor=(0.5, 1.5)): truncated normal
    scale_prob: float = 1.0  # RandomBBoxTransform(scale_prob=1.0)
    rotation: float = 80.0  # RandomBBoxTransform(rotate_factor=80.0): degrees, truncated normal in [-1, 1] x this
    rotate_prob: float = 0.6  # RandomBBoxTransform(rotate_prob=0.6)
    shift: float = 0.16  # RandomBBoxTransform(shift_factor=0.16): fraction of the window size
    shift_prob: float = 0.3  # RandomBBoxTransform(shift_prob=0.3)
    half_body_prob: float = 0.3  # RandomHalfBody(prob=0.3)
    half_body_min_keypoints: int = 9  # RandomHalfBody(min_total_keypoints=9, min_upper 2, min_lower 3)
    half_body_padding: float = 1.5  # RandomHalfBody(padding=1.5)
    half_body_upper_prob: float = 0.7  # RandomHalfBody(upper_prioritized_prob=0.7)
    color_jitter: float = 0.2  # brightness/contrast/saturation factors uniform in [1 - c, 1 + c]; not in MMPose
    enabled: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale_range", tuple(float(v) for v in self.scale_range))
        probs = ("flip_prob", "scale_prob", "rotate_prob", "shift_prob", "half_body_prob", "half_body_upper_prob")
        for name in probs:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"AugmentConfig.{name} is a probability in [0, 1], got {value}")
        if len(self.scale_range) != 2 or not 0 < self.scale_range[0] <= self.scale_range[1]:
            raise InputError(f"AugmentConfig.scale_range needs 0 < low <= high, got {self.scale_range}")
        for name in ("rotation", "shift", "color_jitter", "half_body_padding"):
            if getattr(self, name) < 0:
                raise InputError(f"AugmentConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.color_jitter >= 1:
            raise InputError(f"AugmentConfig.color_jitter must be below 1 (factors 1 +- c), got {self.color_jitter}")


def truncated_normal(rng: np.random.Generator, size: int, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    """``size`` standard-normal draws truncated to [low, high] (scipy ``truncnorm.rvs``, as MMPose), by rejection."""
    out = np.empty(0)
    while len(out) < size:
        draw = rng.standard_normal(2 * (size - len(out)) + 4)
        out = np.concatenate([out, draw[(draw >= low) & (draw <= high)]])
    return out[:size]


def random_bbox_transform(
    center: np.ndarray, scale: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig
) -> tuple[np.ndarray, np.ndarray, float]:
    """MMPose ``RandomBBoxTransform``: returns (centre + shift, scale * s, rotation in degrees).

    shift = truncnorm(2) * shift_factor * scale with probability shift_prob; s = truncnorm * (high - low) / 2 +
    (high + low) / 2 with probability scale_prob; rotation = truncnorm * rotate_factor with probability rotate_prob.
    """
    offset = truncated_normal(rng, 2) * cfg.shift * scale
    shift_on = rng.random() < cfg.shift_prob
    low, high = cfg.scale_range
    factor = truncated_normal(rng, 1)[0] * (high - low) * 0.5 + (high + low) * 0.5
    scale_on = rng.random() < cfg.scale_prob
    angle = truncated_normal(rng, 1)[0] * cfg.rotation
    rotate_on = rng.random() < cfg.rotate_prob
    center = center + offset if shift_on else center.copy()
    scale = scale * factor if scale_on else scale.copy()
    return center, scale, float(angle) if rotate_on else 0.0


def half_body(
    center: np.ndarray,
    scale: np.ndarray,
    keypoints: np.ndarray,
    visible: np.ndarray,
    rng: np.random.Generator,
    cfg: AugmentConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """MMPose ``RandomHalfBody`` on (K, 2) frame keypoints of the COCO-17 layout: a window around one body half.

    Applies with probability ``half_body_prob`` to persons with at least ``half_body_min_keypoints`` visible; picks
    the upper half (>= 2 visible) with probability 0.7, else the lower (>= 3 visible), falling back to whichever
    half qualifies. The window: centre = mean of the half's visible keypoints, size = their extent x padding
    (aspect fixed later, as TopdownAffine does). A degenerate extent (< 2 px) keeps the original window.
    """
    if visible.sum() < cfg.half_body_min_keypoints or rng.random() > cfg.half_body_prob:
        return center, scale
    upper = [i for i in UPPER_BODY if visible[i]]
    lower = [i for i in LOWER_BODY if visible[i]]
    prefer_upper = rng.random() < cfg.half_body_upper_prob
    if len(upper) < 2 and len(lower) < 3:
        return center, scale
    if len(lower) < 3:
        chosen = upper
    elif len(upper) < 2:
        chosen = lower
    else:
        chosen = upper if prefer_upper else lower
    points = keypoints[chosen]
    extent = (points.max(axis=0) - points.min(axis=0)) * cfg.half_body_padding
    if extent.max() < 2.0:
        return center, scale
    return points.mean(axis=0), extent


def fix_aspect_ratio(scale: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """MMPose ``TopdownAffine._fix_aspect_ratio``: enlarge the shorter side so that w / h = input w / h."""
    aspect = input_size[0] / input_size[1]
    w, h = float(scale[0]), float(scale[1])
    return np.array([w, w / aspect]) if w > h * aspect else np.array([h * aspect, h])


def flip_matrix(matrix: np.ndarray, width: int) -> np.ndarray:
    """Compose a horizontal mirror of the crop, x' = width - 1 - x, after a (2, 3) frame -> crop matrix.

    Pixel j of the mirrored crop samples exactly where pixel width - 1 - j of the plain crop does.
    """
    out = np.array(matrix, dtype=np.float64, copy=True)
    out[0] = -out[0]
    out[0, 2] += width - 1
    return out


def flip_keypoints(keypoints: np.ndarray, visible: np.ndarray, flip_index: np.ndarray) -> tuple[np.ndarray, ...]:
    """Relabel (..., K, 2) crop keypoints of a mirrored crop: entry k becomes keypoint ``flip_index[k]``.

    The left wrist seen in a mirrored crop looks like a right wrist, so the model is taught to call it that;
    ``flip_index`` (``edgepose.coco.layout.flip_index``) is its own inverse.
    """
    return keypoints[..., flip_index, :], visible[..., flip_index]


def crop_region(matrix: np.ndarray, input_size: tuple[int, int], frame_shape: tuple[int, ...]) -> tuple[int, ...]:
    """(x0, y0, x1, y1) integer slice bounds of the frame pixels a (2, 3) frame -> crop matrix samples (1 px margin).

    Empty (x1 <= x0 or y1 <= y0) when the crop window misses the frame.
    """
    width, height = input_size
    lin = matrix[:, :2]
    inv = np.linalg.inv(lin)
    corners = np.array([[-0.5, -0.5], [width - 0.5, -0.5], [-0.5, height - 0.5], [width - 0.5, height - 0.5]])
    frame_pts = (corners - matrix[:, 2]) @ inv.T
    lo = np.floor(frame_pts.min(axis=0)).astype(int) - 1
    hi = np.ceil(frame_pts.max(axis=0)).astype(int) + 2
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], frame_shape[1]), min(hi[1], frame_shape[0])
    return x0, y0, x1, y1


def color_jitter(image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Brightness, contrast and saturation jitter of a uint8 BGR image (torchvision ``ColorJitter(s, s, s)``).

    Factors b, c, s uniform in [1 - strength, 1 + strength], applied in that order: x * b; blend with the mean
    grey level (contrast, one LUT with the brightness); blend with the per-pixel grey image (saturation).
    Returns a new uint8 array.
    """
    b, c, s = rng.uniform(1.0 - strength, 1.0 + strength, 3)
    if image.size == 0:
        return image.copy()
    levels = np.clip(np.arange(256, dtype=np.float64) * b, 0, 255)
    mean = float(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).mean()) * b
    lut = np.clip(np.rint(levels * c + (1.0 - c) * mean), 0, 255).astype(np.uint8)
    out = cv2.LUT(image, lut)
    grey = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    return cv2.addWeighted(out, float(s), grey, float(1.0 - s), 0.0)
