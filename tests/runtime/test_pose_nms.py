"""OKS and OKS pose NMS against slow per-pair references and pycocotools' computeOks."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest

from edgepose.coco.layout import SIGMAS
from edgepose.errors import InputError
from edgepose.pose_nms import instance_scores, oks, pose_nms


def _oks_slow(g, d, area_g, area_d, sigmas, counted) -> float:
    """One pair, one keypoint at a time (MMPose ``oks_iou`` written out)."""
    terms = []
    for k in range(len(sigmas)):
        if not counted[k]:
            continue
        d2 = (d[k][0] - g[k][0]) ** 2 + (d[k][1] - g[k][1]) ** 2
        e = d2 / (2 * sigmas[k]) ** 2 / ((area_g + area_d) / 2 + np.spacing(1)) / 2
        terms.append(math.exp(-e))
    return sum(terms) / len(terms) if terms else 0.0


def _pose_nms_slow(xy, scores, boxes, box_scores, sigmas, threshold, kpt_thr) -> list[int]:
    n, k = scores.shape
    rank = []
    for i in range(n):
        above = [s for s in scores[i] if s > kpt_thr]
        rank.append(box_scores[i] * (sum(above) / len(above) if above else 0.0))
    areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
    order, keep = sorted(range(n), key=lambda i: -rank[i]), []
    while order:
        best = order.pop(0)
        keep.append(best)
        order = [
            i for i in order
            if _oks_slow(xy[best], xy[i], areas[best], areas[i], sigmas,
                         [scores[best][j] > kpt_thr and scores[i][j] > kpt_thr for j in range(k)]) <= threshold
        ]
    return keep


def _random_poses(rng, n: int, clusters: int):
    """``n`` poses around ``clusters`` base poses (so some overlap heavily), with boxes and scores."""
    base = rng.uniform(0, 400, (clusters, 17, 2))
    which = rng.integers(0, clusters, n)
    xy = base[which] + rng.normal(0, rng.uniform(0.5, 12, (n, 1, 1)), (n, 17, 2))
    lo, hi = xy.min(axis=1), xy.max(axis=1)
    boxes = np.concatenate([lo - 5, hi + 5], axis=1)
    return xy, rng.uniform(0, 1, (n, 17)), boxes, rng.uniform(0.3, 1, n)


def test_oks_matches_slow_reference() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        xy, _, boxes, _ = _random_poses(rng, 12, 2)
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        valid = rng.uniform(size=(11, 17)) > 0.3
        fast = oks(xy[0], xy[1:], areas[0], areas[1:], SIGMAS, valid)
        slow = [_oks_slow(xy[0], xy[i + 1], areas[0], areas[i + 1], SIGMAS, valid[i]) for i in range(11)]
        np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-15)
    assert oks(xy[0], xy[:1], 100.0, [100.0], SIGMAS)[0] == pytest.approx(1.0)
    assert oks(xy[0], xy[1:2], 100.0, [100.0], SIGMAS, np.zeros((1, 17), bool))[0] == 0.0


def test_oks_equals_pycocotools_compute_oks() -> None:
    """Handcrafted GT (some keypoints unlabelled) vs three detections; equal areas make the formulas coincide."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_xy = np.array([[100 + 7 * k, 50 + 11 * k] for k in range(17)], dtype=np.float64)
    vis = np.array([2, 2, 1, 0, 2, 2, 2, 1, 2, 0, 2, 2, 2, 2, 1, 2, 0])
    x, y, w, h = 90.0, 40.0, 140.0, 200.0
    offsets = [np.full((17, 2), 1.5), np.tile([[4.0, -3.0]], (17, 1)), np.arange(34.0).reshape(17, 2) * 0.7]
    dets = [gt_xy + o for o in offsets]
    dataset = {
        "images": [{"id": 1, "width": 640, "height": 480}],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": [{
            "id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [x, y, w, h], "area": w * h,
            "num_keypoints": int((vis > 0).sum()),
            "keypoints": np.concatenate([gt_xy, vis[:, None]], axis=1).ravel().tolist(),
        }],
    }
    results = [{"image_id": 1, "category_id": 1, "score": 0.9 - 0.1 * i,
                "keypoints": np.concatenate([d, np.ones((17, 1))], axis=1).ravel().tolist()}
               for i, d in enumerate(dets)]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = dataset
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(results), "keypoints")
        evaluator.params.imgIds = [1]
        evaluator._prepare()
        reference = evaluator.computeOks(1, 1)[:, 0]  # dets are already in score order
    ours = oks(gt_xy, np.stack(dets), w * h, np.full(3, w * h), SIGMAS, np.broadcast_to(vis > 0, (3, 17)))
    np.testing.assert_allclose(ours, reference, rtol=1e-12)
    assert 0.0 < ours.min() < ours.max() < 1.0


def test_pose_nms_matches_slow_reference() -> None:
    rng = np.random.default_rng(1)
    suppressed = 0
    for trial in range(30):
        xy, scores, boxes, box_scores = _random_poses(rng, 15, 4)
        threshold, kpt_thr = (0.9, 0.2) if trial % 2 else (0.5, 0.4)
        fast = pose_nms(xy, scores, boxes, box_scores, SIGMAS, threshold, kpt_thr)
        slow = _pose_nms_slow(xy, scores, boxes, box_scores, SIGMAS, threshold, kpt_thr)
        assert fast.tolist() == slow
        suppressed += 15 - len(fast)
    assert suppressed > 30  # the clusters really overlap, so the comparison exercised suppression


def test_instance_scores() -> None:
    kpts = np.array([[0.1, 0.5, 0.7], [0.1, 0.2, 0.05], [0.3, 0.3, 0.3]])
    np.testing.assert_allclose(instance_scores([0.9, 0.8, 0.5], kpts), [0.9 * 0.6, 0.0, 0.5 * 0.3])
    np.testing.assert_allclose(instance_scores([0.9, 0.8, 0.5], kpts, keypoint_threshold=0.0),
                               [0.9 * 1.3 / 3, 0.8 * 0.35 / 3, 0.15])
    with pytest.raises(InputError):
        instance_scores([0.9], kpts)


def test_pose_nms_cases() -> None:
    rng = np.random.default_rng(2)
    pose = rng.uniform(100, 200, (17, 2))
    far = pose + 300
    box = [90, 90, 210, 210]
    xy = np.stack([pose, pose + 0.5, far])
    scores = np.full((3, 17), 0.9)
    keep = pose_nms(xy, scores, np.array([box, box, np.add(box, 300)]), np.array([0.7, 0.8, 0.6]), SIGMAS)
    assert keep.tolist() == [1, 2]  # the near duplicate of the better pose is dropped
    assert pose_nms(np.zeros((0, 17, 2)), np.zeros((0, 17)), np.zeros((0, 4)), np.zeros(0), SIGMAS).shape == (0,)


def test_low_score_and_non_finite_keypoints_do_not_count() -> None:
    pose = np.random.default_rng(3).uniform(100, 200, (17, 2))
    other = pose.copy()
    other[:8] += 80.0  # far off, but only on keypoints both poses score low
    scores = np.full((2, 17), 0.9)
    scores[:, :8] = 0.1
    boxes = np.array([[90, 90, 210, 210]] * 2, dtype=np.float64)
    xy = np.stack([pose, other])
    assert pose_nms(xy, scores, boxes, np.array([0.9, 0.8]), SIGMAS).tolist() == [0]
    assert pose_nms(xy, scores, boxes, np.array([0.9, 0.8]), SIGMAS, keypoint_threshold=0.05).tolist() == [0, 1]
    xy[1, 8] = np.nan
    assert pose_nms(xy, scores, boxes, np.array([0.9, 0.8]), SIGMAS).tolist() == [0]


def test_shape_errors() -> None:
    with pytest.raises(InputError):
        pose_nms(np.zeros((2, 17, 2)), np.zeros((2, 16)), np.zeros((2, 4)), np.zeros(2), SIGMAS)
    with pytest.raises(InputError):
        oks(np.zeros((17, 2)), np.zeros((3, 5, 2)), 1.0, np.ones(3), SIGMAS)
