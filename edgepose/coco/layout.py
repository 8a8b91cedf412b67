"""The COCO-17 keypoint layout: names, flip pairs, skeleton, OKS sigmas. The defaults of a 17-keypoint card."""

from __future__ import annotations

import numpy as np

KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)

FLIP_PAIRS: tuple[tuple[int, int], ...] = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))

# 0-based index pairs (COCO's own "skeleton" field is 1-based).
SKELETON: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
    (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)

# Per-keypoint OKS sigmas from pycocotools (cocoeval.py).
SIGMAS = np.array(
    [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89]
) / 10.0


def flip_index(num_keypoints: int, flip_pairs: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Permutation that maps each keypoint to its mirror partner (identity for unpaired ones)."""
    index = np.arange(num_keypoints)
    for a, b in flip_pairs:
        index[a], index[b] = b, a
    return index
