"""Drawing poses on a frame: limbs coloured by body side (MMPose's COCO colours), keypoints, optional boxes and ids."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from edgepose.coco.layout import KEYPOINTS
from edgepose.errors import InputError

# BGR versions of MMPose's COCO palette (RGB there): left (0, 255, 0), right (255, 128, 0), centre (51, 153, 255).
LEFT_COLOR = (0, 255, 0)
RIGHT_COLOR = (0, 128, 255)
CENTER_COLOR = (255, 153, 51)
BOX_COLOR = (0, 255, 0)
TEXT_COLOR = (255, 255, 255)
_COLORS = {"left": LEFT_COLOR, "right": RIGHT_COLOR, "center": CENTER_COLOR}
_HEAD_PARTS = ("nose", "eye", "ear", "mouth")
_SHIFT = 4  # sub-pixel bits for OpenCV drawing
_LIMIT = 1e6  # coordinates are clipped to +-this before fixed-point conversion


def _sides(names: Sequence[str]) -> list[str]:
    """'left' / 'right' for body points named so, 'center' for the rest and for head points (nose, eyes, ears)."""
    sides = []
    for name in (n.lower() for n in names):
        head = any(part in name for part in _HEAD_PARTS)
        sides.append("center" if head else "left" if "left" in name else "right" if "right" in name else "center")
    return sides


def keypoint_colors(names: Sequence[str] | None, num_keypoints: int) -> list[tuple[int, int, int]]:
    """One BGR colour per keypoint by side; all centre colour without names. Matches MMPose's COCO colours."""
    if names is None:
        return [CENTER_COLOR] * num_keypoints
    return [_COLORS[side] for side in _sides(names)]


def limb_colors(skeleton: Sequence[tuple[int, int]], names: Sequence[str] | None) -> list[tuple[int, int, int]]:
    """One BGR colour per limb: a side's colour when both ends are on that side, else centre (as MMPose's COCO)."""
    if names is None:
        return [CENTER_COLOR] * len(skeleton)
    sides = _sides(names)
    return [_COLORS[sides[a]] if sides[a] == sides[b] else CENTER_COLOR for a, b in skeleton]


def _fixed(point: np.ndarray) -> tuple[int, int]:
    p = np.clip(point, -_LIMIT, _LIMIT) * (1 << _SHIFT)
    return int(round(float(p[0]))), int(round(float(p[1])))


def _check(frame: np.ndarray, xy: np.ndarray, scores: np.ndarray, skeleton, boxes, ids) -> None:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        shape = getattr(frame, "shape", None)
        raise InputError(f"frame must be an (H, W, 3) uint8 BGR array, got {type(frame).__name__} {shape}")
    if xy.ndim != 3 or xy.shape[2] != 2 or scores.shape != xy.shape[:2]:
        raise InputError(f"xy must be (N, K, 2) and scores (N, K); got {xy.shape} and {scores.shape}")
    num_kpts = xy.shape[1]
    if any(not (0 <= a < num_kpts and 0 <= b < num_kpts) for a, b in skeleton):
        raise InputError(f"skeleton refers to keypoints outside 0..{num_kpts - 1}: {list(skeleton)}")
    if boxes is not None and np.shape(boxes) != (len(xy), 4):
        raise InputError(f"boxes must be ({len(xy)}, 4) xyxy to match the poses, got {np.shape(boxes)}")
    if ids is not None and len(ids) != len(xy):
        raise InputError(f"ids must have one entry per pose ({len(xy)}), got {len(ids)}")


def draw_poses(
    frame: np.ndarray,
    xy: np.ndarray,
    scores: np.ndarray,
    skeleton: Sequence[tuple[int, int]],
    keypoint_threshold: float = 0.3,
    boxes: np.ndarray | None = None,
    ids: Sequence[int] | None = None,
    text: str | None = None,
    keypoint_names: Sequence[str] | None = None,
) -> np.ndarray:
    """Return a copy of ``frame`` with the poses drawn; ``frame`` itself is not modified.

    xy (N, K, 2) and scores (N, K) in frame pixels; a keypoint is drawn when its score >= ``keypoint_threshold``
    and its coordinates are finite, a limb when both its ends are. ``keypoint_names`` picks the side colours
    (COCO-17 names by default when K == 17). ``boxes`` (N, 4) xyxy, ``ids`` (N,) and ``text`` (a line at the
    top-left, e.g. FPS) are optional.
    """
    xy = np.asarray(xy, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    skeleton = [(int(a), int(b)) for a, b in skeleton]
    _check(frame, xy, scores, skeleton, boxes, ids)
    out = frame.copy()
    height, width = out.shape[:2]
    thickness = max(1, int(round(min(height, width) / 240)))
    radius = (thickness + 2) << _SHIFT
    font_scale = max(0.4, min(height, width) / 800)
    num_kpts = xy.shape[1]
    if keypoint_names is None and num_kpts == len(KEYPOINTS):
        keypoint_names = KEYPOINTS
    if keypoint_names is not None and len(keypoint_names) != num_kpts:
        raise InputError(f"keypoint_names has {len(keypoint_names)} names for {num_kpts} keypoints")
    kpt_colors = keypoint_colors(keypoint_names, num_kpts)
    bone_colors = limb_colors(skeleton, keypoint_names)
    shown = np.isfinite(xy).all(axis=2) & np.isfinite(scores) & (scores >= keypoint_threshold)
    for i in range(len(xy)):
        for (a, b), color in zip(skeleton, bone_colors, strict=True):
            if shown[i, a] and shown[i, b]:
                cv2.line(out, _fixed(xy[i, a]), _fixed(xy[i, b]), color, thickness + 1, cv2.LINE_AA, _SHIFT)
        for k in np.flatnonzero(shown[i]):
            cv2.circle(out, _fixed(xy[i, k]), radius, kpt_colors[k], -1, cv2.LINE_AA, _SHIFT)
        anchor = None
        if boxes is not None and np.isfinite(boxes[i]).all():
            x1, y1, x2, y2 = (float(v) for v in boxes[i])
            cv2.rectangle(out, _fixed(np.array([x1, y1])), _fixed(np.array([x2, y2])), BOX_COLOR, thickness,
                          cv2.LINE_AA, _SHIFT)
            anchor = (x1, y1)
        elif shown[i].any():
            anchor = (float(xy[i, shown[i], 0].min()), float(xy[i, shown[i], 1].min()))
        if ids is not None and anchor is not None:
            org = (int(np.clip(anchor[0], 0, width - 1)), int(np.clip(anchor[1] - 4, 12, height - 1)))
            cv2.putText(out, f"id {ids[i]}", org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, BOX_COLOR, thickness,
                        cv2.LINE_AA)
    if text:
        org = (8, 8 + int(round(22 * font_scale)))
        cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
        cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, TEXT_COLOR, thickness, cv2.LINE_AA)
    return out
