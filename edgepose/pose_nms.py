"""OKS similarity and the greedy OKS pose NMS of MMPose (``oks_nms``), vectorised over poses and keypoints.

OKS between poses g and d (COCO, with MMPose's symmetric area):
    e_k = |x_dk - x_gk|^2 / (2 sigma_k)^2 / ((area_g + area_d) / 2 + eps) / 2,   OKS = mean over counted k of exp(-e_k)
With equal areas this is pycocotools' ``computeOks`` (which uses the ground-truth area).
"""

from __future__ import annotations

import numpy as np

from edgepose.errors import InputError

_EPS = np.spacing(1)


def oks(
    xy: np.ndarray,
    others: np.ndarray,
    area: float,
    other_areas: np.ndarray,
    sigmas: np.ndarray,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """OKS of one pose ``xy`` (K, 2) against ``others`` (M, K, 2); returns (M,) float64.

    ``area`` / ``other_areas`` (M,) are the instance areas (box w * h); the scale is their mean.
    ``valid`` (M, K) bool marks the keypoints that count (all when None); a pose with none counted gets 0.
    Non-finite coordinates never count.
    """
    xy = np.asarray(xy, dtype=np.float64)
    others = np.asarray(others, dtype=np.float64)
    sigmas = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    num_kpts = len(sigmas)
    if xy.shape != (num_kpts, 2) or others.ndim != 3 or others.shape[1:] != (num_kpts, 2):
        raise InputError(
            f"oks needs xy ({num_kpts}, 2) and others (M, {num_kpts}, 2) to match {num_kpts} sigmas; "
            f"got {xy.shape} and {others.shape}"
        )
    other_areas = np.broadcast_to(np.asarray(other_areas, dtype=np.float64), (len(others),))
    counted = np.isfinite(others).all(axis=2) & np.isfinite(xy).all(axis=1)
    if valid is not None:
        counted &= np.broadcast_to(np.asarray(valid, dtype=bool), counted.shape)
    variances = (2.0 * sigmas) ** 2
    dist2 = ((others - xy) ** 2).sum(axis=2)
    scale = (area + other_areas)[:, None] / 2.0 + _EPS
    with np.errstate(invalid="ignore", over="ignore"):
        sim = np.exp(-dist2 / variances / scale / 2.0)
    total = np.where(counted, sim, 0.0).sum(axis=1)
    count = counted.sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def instance_scores(
    box_scores: np.ndarray, keypoint_scores: np.ndarray, keypoint_threshold: float = 0.2
) -> np.ndarray:
    """Instance score (N,) = box score * mean of the keypoint scores above ``keypoint_threshold`` (0 if none).

    MMPose's ``CocoMetric`` rescoring (``score_mode='bbox_keypoint'``); returns float64.
    """
    box_scores = np.asarray(box_scores, dtype=np.float64).reshape(-1)
    keypoint_scores = np.asarray(keypoint_scores, dtype=np.float64)
    if keypoint_scores.ndim != 2 or len(keypoint_scores) != len(box_scores):
        raise InputError(
            f"keypoint_scores must have shape (N, K) with N = {len(box_scores)} box scores, "
            f"got {keypoint_scores.shape}"
        )
    above = keypoint_scores > keypoint_threshold
    count = above.sum(axis=1)
    mean = np.where(above, keypoint_scores, 0.0).sum(axis=1) / np.maximum(count, 1)
    return box_scores * np.where(count > 0, mean, 0.0)


def pose_nms(
    xy: np.ndarray,
    scores: np.ndarray,
    boxes: np.ndarray,
    box_scores: np.ndarray,
    sigmas: np.ndarray,
    threshold: float = 0.9,
    keypoint_threshold: float = 0.2,
) -> np.ndarray:
    """Greedy OKS NMS (MMPose ``oks_nms``): indices of the poses kept, best instance score first.

    xy (N, K, 2), scores (N, K), boxes (N, 4) xyxy (area = w * h), box_scores (N,), sigmas (K,).
    Poses are ranked by ``instance_scores``; each kept pose drops the remaining ones whose OKS with it exceeds
    ``threshold``. Only keypoints scoring above ``keypoint_threshold`` in both poses count toward OKS
    (MMPose's ``vis_thr``); the same threshold selects the keypoints averaged into the instance score.
    """
    xy = np.asarray(xy, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64)
    box_scores = np.asarray(box_scores, dtype=np.float64).reshape(-1)
    n = len(box_scores)
    if xy.ndim != 3 or xy.shape[2] != 2 or scores.shape != xy.shape[:2] or boxes.shape != (n, 4) or len(xy) != n:
        raise InputError(
            "pose_nms needs xy (N, K, 2), scores (N, K), boxes (N, 4) and box_scores (N,) with one N; got "
            f"{xy.shape}, {scores.shape}, {boxes.shape}, {box_scores.shape}"
        )
    if n == 0:
        return np.zeros((0,), dtype=np.int64)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    ranking = instance_scores(box_scores, scores, keypoint_threshold)
    visible = scores > keypoint_threshold
    order = np.argsort(-ranking, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        sim = oks(xy[best], xy[rest], areas[best], areas[rest], sigmas, visible[rest] & visible[best])
        order = rest[sim <= threshold]
    return np.asarray(keep, dtype=np.int64)
