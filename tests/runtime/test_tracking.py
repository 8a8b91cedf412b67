"""Pose tracking: ids survive shuffled detection order and short gaps, one-frame false positives get no id,
OKS matches a direct per-pair computation, and smoothing runs per track."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.coco.layout import SIGMAS
from edgepose.errors import InputError
from edgepose.video.tracking import PoseTracker, iou_matrix, oks_matrix


def person(center, rng, jitter=1.0):
    base = np.stack([np.linspace(-20, 20, 17), np.linspace(-60, 60, 17)], axis=1)
    xy = np.asarray(center) + base + rng.normal(0, jitter, (17, 2))
    box = np.array([xy[:, 0].min() - 10, xy[:, 1].min() - 10, xy[:, 0].max() + 10, xy[:, 1].max() + 10])
    return xy, box


def frame_of(people, rng):
    order = rng.permutation(len(people))
    xy = np.stack([people[i][0] for i in order])
    boxes = np.stack([people[i][1] for i in order])
    return xy, np.ones(xy.shape[:2]), boxes, order


@pytest.mark.parametrize("similarity", ["oks", "iou"])
def test_ids_follow_people_through_shuffles_and_gaps(similarity):
    rng = np.random.default_rng(0)
    tracker = PoseTracker(min_hits=2, max_misses=3, similarity=similarity)
    seen: dict[int, set] = {0: set(), 1: set()}
    for f in range(30):
        people = [person((100 + 3 * f, 200), rng), person((400 - 2 * f, 220), rng)]
        if 10 <= f < 13:  # person 1 hidden for 3 frames (<= max_misses)
            people = people[:1]
        if f == 20:  # a one-frame false positive far away
            people = [*people, person((800, 600), rng)]
        xy, scores, boxes, order = frame_of(people, rng)
        ids, _ = tracker.update(xy, scores, boxes, f / 30)
        for slot, who in enumerate(order):
            if who < 2 and f > 0:
                seen[who].add(int(ids[slot]))
            if who == 2:
                assert ids[slot] == -1  # never confirmed
    assert len(seen[0]) == 1 and len(seen[1]) == 1 and seen[0] != seen[1] and -1 not in seen[0] | seen[1]


def test_a_long_absence_ends_the_track():
    rng = np.random.default_rng(1)
    tracker = PoseTracker(min_hits=1, max_misses=2)
    xy, box = person((100, 100), rng)
    first, _ = tracker.update(xy[None], np.ones((1, 17)), box[None], 0.0)
    for f in range(1, 5):
        tracker.update(np.zeros((0, 17, 2)), np.zeros((0, 17)), np.zeros((0, 4)), f / 30)
    again, _ = tracker.update(xy[None], np.ones((1, 17)), box[None], 5 / 30)
    assert first[0] != again[0]


def test_oks_matrix_matches_the_pairwise_formula():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0, 100, (3, 17, 2)), rng.uniform(0, 100, (4, 17, 2))
    areas = rng.uniform(500, 5000, 3)
    got = oks_matrix(a, b, areas, SIGMAS)
    for i in range(3):
        for j in range(4):
            d2 = ((a[i] - b[j]) ** 2).sum(-1)
            want = np.mean(np.exp(-d2 / (2 * areas[i] * (2 * SIGMAS) ** 2)))
            assert got[i, j] == pytest.approx(want)


def test_smoothing_per_track_and_bad_input():
    rng = np.random.default_rng(3)
    tracker = PoseTracker(min_hits=1, smoothing={"min_cutoff": 0.5, "beta": 0.0})
    raw, smooth = [], []
    for f in range(40):
        xy, box = person((200, 200), rng, jitter=3.0)
        _, out = tracker.update(xy[None], np.ones((1, 17)), box[None], f / 30)
        raw.append(xy)
        smooth.append(out[0])
    assert np.std(np.array(smooth)[10:], axis=0).mean() < 0.5 * np.std(np.array(raw)[10:], axis=0).mean()
    with pytest.raises(InputError, match="match_oks"):
        PoseTracker(match_oks=1.5)
    with pytest.raises(InputError, match="update needs"):
        tracker.update(np.zeros((2, 17)), np.zeros((2, 17)), np.zeros((2, 4)), 2.0)


def test_iou_matrix_matches_the_pairwise_formula():
    rng = np.random.default_rng(5)
    a = np.sort(rng.uniform(0, 100, (4, 2, 2)), axis=1).transpose(0, 2, 1).reshape(4, 4)[:, [0, 2, 1, 3]]
    b = np.sort(rng.uniform(0, 100, (3, 2, 2)), axis=1).transpose(0, 2, 1).reshape(3, 4)[:, [0, 2, 1, 3]]
    for i, p in enumerate(a):
        for j, q in enumerate(b):
            w = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
            h = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
            union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - w * h
            assert iou_matrix(a, b)[i, j] == pytest.approx(w * h / union)
    assert iou_matrix(a, a).diagonal() == pytest.approx(np.ones(4))
    with pytest.raises(InputError, match="similarity"):
        PoseTracker(similarity="hungarian")


def test_unsure_keypoints_do_not_break_matching():
    rng = np.random.default_rng(7)
    tracker = PoseTracker(min_hits=1)
    xy, box = person((200, 200), rng)
    first, _ = tracker.update(xy[None], np.ones((1, 17)), box[None], 0.0)
    moved = xy + 2.0
    moved[:12] = rng.uniform(0, 1000, (12, 2))  # occluded: wild guesses, scored 0
    scores = np.ones((1, 17))
    scores[0, :12] = 0.0
    again, _ = tracker.update(moved[None], scores, box[None] + 2, 1 / 30)
    assert again[0] == first[0]
