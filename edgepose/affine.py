"""Affine: the crop transform from frame pixels to model-input pixels, batched over boxes.

Pixel convention (the one place it is defined): a point (x, y) is in pixel units with integer values at pixel
centres. (0, 0) is the centre of the top-left pixel, which covers [-0.5, 0.5) x [-0.5, 0.5). This is OpenCV's
convention for ``warpAffine`` and the one COCO keypoints are read in by MMPose. The crop's pixel at row i, column j
samples the frame at ``A.inverse().apply((j, i))``.

Box to crop follows MMPose's ``TopdownAffine``: centre and size of the box, size times ``padding``, the smaller side
enlarged so that the aspect ratio equals the input's, and then either
- the standard mapping: box centre -> (W/2, H/2), box width -> W (``udp=False``), or
- the UDP mapping (Huang et al., CVPR 2020): box centre -> ((W-1)/2, (H-1)/2), box width -> W-1 (``udp=True``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgepose.errors import InputError


def boxes_to_center_scale(
    boxes: np.ndarray, input_size: tuple[int, int], padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) xyxy boxes -> centres (N, 2) and sizes (N, 2) padded and fixed to the input's aspect ratio."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    center = (boxes[:, :2] + boxes[:, 2:]) * 0.5
    scale = (boxes[:, 2:] - boxes[:, :2]) * padding
    aspect = input_size[0] / input_size[1]
    w, h = scale[:, 0], scale[:, 1]
    wider = w > h * aspect
    scale = np.stack([np.where(wider, w, h * aspect), np.where(wider, w / aspect, h)], axis=1)
    return center, scale


# Largest box coordinate accepted: float32 (the dtype of Poses) has whole-pixel resolution up to 2**24.
MAX_COORDINATE = float(2**24)


def _real_array(values: object, what: str) -> np.ndarray:
    """``values`` as float64, or InputError when they are not real numbers (strings, complex, ragged lists)."""
    try:
        raw = np.asarray(values)
    except ValueError as exc:  # ragged nested lists
        raise InputError(f"{what} must be a rectangular array of numbers: {exc}") from exc
    if raw.dtype.kind not in "iufO":
        raise InputError(f"{what} must be real numbers, got dtype {raw.dtype}")
    try:
        return raw.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must be real numbers: {exc}") from exc


def validate_box_scores(scores: object, count: int) -> np.ndarray:
    """(N,) finite float32 box scores for ``count`` boxes (any shape with N elements), or InputError."""
    arr = _real_array(scores, "box scores").reshape(-1)
    if len(arr) != count:
        raise InputError(f"got {count} boxes but {len(arr)} box scores")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise InputError(f"box score {int(np.argmax(bad))} is NaN or infinite: {arr[bad][0]}")
    return arr.astype(np.float32)


def validate_boxes(boxes: np.ndarray, frame_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Check (N, 4) xyxy boxes: real numbers, finite, within ``MAX_COORDINATE``, positive size, and (with
    ``frame_shape``) overlapping the frame."""
    arr = _real_array(boxes, "boxes")
    if arr.size == 0:  # no persons: [] or an empty (0, 4) array
        return np.zeros((0, 4))
    if arr.ndim == 1 and arr.size == 4:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise InputError(f"boxes must have shape (N, 4) as x1, y1, x2, y2; got shape {arr.shape}")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise InputError(f"box {int(np.argmax(bad))} has a NaN or infinite coordinate: {arr[bad][0].tolist()}")
    huge = (np.abs(arr) > MAX_COORDINATE).any(axis=1)
    if huge.any():
        i = int(np.argmax(huge))
        raise InputError(f"box {i} {arr[i].tolist()} has a coordinate beyond +-{MAX_COORDINATE:.0f} px, where float32 "
                         "keypoints cannot hold whole pixels: pass boxes in frame pixels")
    degenerate = (arr[:, 2] <= arr[:, 0]) | (arr[:, 3] <= arr[:, 1])
    if degenerate.any():
        i = int(np.argmax(degenerate))
        raise InputError(f"box {i} has zero or negative size (need x2 > x1 and y2 > y1): {arr[i].tolist()}")
    if frame_shape is not None:
        height, width = frame_shape[:2]
        outside = (arr[:, 2] <= -0.5) | (arr[:, 3] <= -0.5) | (arr[:, 0] >= width - 0.5) | (arr[:, 1] >= height - 0.5)
        if outside.any():
            i = int(np.argmax(outside))
            raise InputError(f"box {i} {arr[i].tolist()} lies entirely outside the {width}x{height} frame")
    return arr


@dataclass(frozen=True)
class Affine:
    """A batch of 2x3 affine matrices, shape (N, 2, 3), mapping frame pixels to crop pixels (or back)."""

    matrices: np.ndarray

    def __post_init__(self) -> None:
        m = np.asarray(self.matrices, dtype=np.float64)
        if m.ndim == 2:
            m = m[None]
        if m.ndim != 3 or m.shape[1:] != (2, 3):
            raise InputError(f"affine matrices must have shape (N, 2, 3), got {np.shape(self.matrices)}")
        object.__setattr__(self, "matrices", m)

    def __len__(self) -> int:
        return len(self.matrices)

    def __getitem__(self, index) -> Affine:
        return Affine(self.matrices[index])

    @classmethod
    def from_boxes(
        cls,
        boxes: np.ndarray,
        input_size: tuple[int, int],
        padding: float = 1.25,
        udp: bool = False,
        rotation: np.ndarray | None = None,
    ) -> Affine:
        """Crop transforms for (N, 4) xyxy boxes into an input of ``input_size`` = (width, height).

        ``rotation`` (degrees, (N,) or scalar) turns the crop window counter-clockwise about the box centre,
        as training augmentation does; the runtime uses none.
        """
        center, scale = boxes_to_center_scale(boxes, input_size, padding)
        return cls.from_center_scale(center, scale, input_size, udp=udp, rotation=rotation)

    @classmethod
    def from_center_scale(
        cls,
        center: np.ndarray,
        scale: np.ndarray,
        input_size: tuple[int, int],
        udp: bool = False,
        rotation: np.ndarray | None = None,
    ) -> Affine:
        """Crop transforms from centres (N, 2) and window sizes (N, 2), aspect already fixed."""
        center = np.asarray(center, dtype=np.float64).reshape(-1, 2)
        scale = np.asarray(scale, dtype=np.float64).reshape(-1, 2)
        width, height = input_size
        if udp:
            sx, sy = (width - 1) / scale[:, 0], (height - 1) / scale[:, 1]
            dst = np.array([(width - 1) * 0.5, (height - 1) * 0.5])
        else:
            sx, sy = width / scale[:, 0], height / scale[:, 1]
            dst = np.array([width * 0.5, height * 0.5])
        theta = np.deg2rad(np.zeros(len(center)) if rotation is None else np.broadcast_to(rotation, len(center)))
        cos, sin = np.cos(theta), np.sin(theta)
        m = np.empty((len(center), 2, 3))
        # x' = sx * ( cos*(x-cx) + sin*(y-cy)) + dst_x ; y' = sy * (-sin*(x-cx) + cos*(y-cy)) + dst_y
        m[:, 0, 0], m[:, 0, 1] = sx * cos, sx * sin
        m[:, 1, 0], m[:, 1, 1] = -sy * sin, sy * cos
        m[:, 0, 2] = dst[0] - m[:, 0, 0] * center[:, 0] - m[:, 0, 1] * center[:, 1]
        m[:, 1, 2] = dst[1] - m[:, 1, 0] * center[:, 0] - m[:, 1, 1] * center[:, 1]
        return cls(m)

    def inverse(self) -> Affine:
        """The transforms the other way (crop pixels -> frame pixels)."""
        m = self.matrices
        a, b, c, d = m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1]
        det = a * d - b * c
        if not np.all(det != 0):
            raise InputError("an affine matrix is singular (zero scale): it has no inverse")
        out = np.empty_like(m)
        out[:, 0, 0], out[:, 0, 1], out[:, 1, 0], out[:, 1, 1] = d / det, -b / det, -c / det, a / det
        out[:, :, 2] = -np.einsum("nij,nj->ni", out[:, :, :2], m[:, :, 2])
        return Affine(out)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map (N, K, 2) points (one set per matrix) and return (N, K, 2) float64."""
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 3 or pts.shape[0] != len(self) or pts.shape[2] != 2:
            raise InputError(f"points must have shape ({len(self)}, K, 2) to match the matrices, got {pts.shape}")
        return np.einsum("nij,nkj->nki", self.matrices[:, :, :2], pts) + self.matrices[:, None, :, 2]
