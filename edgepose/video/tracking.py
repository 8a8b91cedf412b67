"""Pose tracking across frames: greedy OKS or IoU matching, track birth/death with hysteresis, One-Euro smoothing.

    tracker = PoseTracker()
    for t, frame in stream:
        poses = estimator(frame)
        ids, xy = tracker.update(poses.xy, poses.scores, poses.boxes, t)   # ids -1: not yet confirmed

A detection joins the track with the highest similarity above ``match_oks``, pairs taken best first, each track and
detection once (greedy matching). The similarity is the keypoints' object keypoint similarity (``similarity="oks"``)
or the boxes' intersection over union (``"iou"``, steadier when keypoints are unsure). A track is confirmed after
``min_hits`` matched frames and removed after ``max_misses`` frames without a match; an unconfirmed track is removed
at its first miss, so one-frame false positives never get an id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from edgepose.coco.layout import SIGMAS as COCO_SIGMAS
from edgepose.errors import InputError
from edgepose.video.smoothing import OneEuroFilter, SmoothingSettings


@dataclass(frozen=True)
class TrackerSettings:
    """PoseTracker settings: match threshold, hits to confirm, misses to drop, keypoint score threshold and
    similarity ('oks' or 'iou'); see the module docstring."""

    match_oks: float = 0.3
    min_hits: int = 2
    max_misses: int = 5
    keypoint_threshold: float = 0.2
    similarity: str = "oks"

    def __post_init__(self) -> None:
        if not 0 < self.match_oks < 1 or self.min_hits < 1 or self.max_misses < 0:
            raise InputError(f"PoseTracker needs 0 < match_oks < 1, min_hits >= 1, max_misses >= 0; got "
                             f"{self.match_oks}, {self.min_hits}, {self.max_misses}")
        if self.similarity not in ("oks", "iou"):
            raise InputError(f"PoseTracker similarity must be 'oks' or 'iou', got {self.similarity!r}")

    @classmethod
    def of(cls, value: TrackerSettings | Mapping | None) -> TrackerSettings | None:
        """``value`` as settings: settings and None pass through, a mapping gives its keyword arguments."""
        if value is None or isinstance(value, TrackerSettings):
            return value
        return cls(**value)


def oks_matrix(a: np.ndarray, b: np.ndarray, areas: np.ndarray, sigmas: np.ndarray,
               visible: np.ndarray | None = None) -> np.ndarray:
    """(len(a), len(b)) object keypoint similarity of (N,K,2) poses ``a`` to ``b``, scales from ``areas`` of a."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    d2 = ((a[:, None] - b[None]) ** 2).sum(-1)  # (Na, Nb, K)
    var = (2 * np.asarray(sigmas)) ** 2
    e = d2 / (2 * np.maximum(areas, 1.0)[:, None, None] * var[None, None])
    sim = np.exp(-e)
    if visible is None:
        return sim.mean(-1)
    weight = visible[None].astype(np.float64)
    return (sim * weight).sum(-1) / np.maximum(weight.sum(-1), 1.0)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over union of (N,4) xyxy boxes ``a`` and ``b``."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-9)


@dataclass
class Track:
    """One person over time."""

    id: int
    xy: np.ndarray
    box: np.ndarray
    hits: int = 1
    misses: int = 0
    smoother: OneEuroFilter | None = None
    smoothed: np.ndarray | None = field(default=None)

    @property
    def area(self) -> float:
        """Box area, the OKS scale."""
        return float(max(self.box[2] - self.box[0], 1.0) * max(self.box[3] - self.box[1], 1.0))


class PoseTracker:
    """Keeps person ids across frames; see the module docstring."""

    def __init__(self, match_oks: float = 0.3, min_hits: int = 2, max_misses: int = 5,
                 sigmas: np.ndarray | None = None, keypoint_threshold: float = 0.2,
                 smoothing: SmoothingSettings | Mapping | None = None, similarity: str = "oks") -> None:
        self.settings = TrackerSettings(match_oks, min_hits, max_misses, keypoint_threshold, similarity)
        self.similarity = similarity
        self.match_oks, self.min_hits, self.max_misses = match_oks, min_hits, max_misses
        self.sigmas = np.asarray(COCO_SIGMAS if sigmas is None else sigmas, np.float64)
        self.keypoint_threshold = keypoint_threshold
        self.smoothing = SmoothingSettings.of(smoothing)  # One-Euro settings per track, or None for raw keypoints
        self.tracks: list[Track] = []
        self._next_id = 0

    @classmethod
    def from_settings(cls, settings: TrackerSettings | None = None, sigmas: np.ndarray | None = None,
                      smoothing: SmoothingSettings | None = None) -> PoseTracker:
        """A tracker with these settings (None: the defaults), keypoint ``sigmas`` and per-track ``smoothing``."""
        s = settings or TrackerSettings()
        return cls(s.match_oks, s.min_hits, s.max_misses, sigmas, s.keypoint_threshold, smoothing, s.similarity)

    def update(self, xy: np.ndarray, scores: np.ndarray, boxes: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Match this frame's poses (N,K,2), scores (N,K), boxes (N,4) at time ``t`` (s); returns (ids (N,),
        keypoints (N,K,2), smoothed per track when smoothing is on). Unconfirmed detections get id -1."""
        xy, scores, boxes = (np.asarray(v, np.float64) for v in (xy, scores, boxes))
        if xy.ndim != 3 or xy.shape[-1] != 2 or len(scores) != len(xy) or len(boxes) != len(xy):
            raise InputError(f"update needs xy (N,K,2), scores (N,K), boxes (N,4); got {xy.shape}, {scores.shape}, "
                             f"{boxes.shape}")
        if self.similarity == "iou":
            sim = iou_matrix(np.array([tr.box for tr in self.tracks]).reshape(-1, 4), boxes)
        else:
            prev = np.stack([tr.xy for tr in self.tracks]) if self.tracks else np.zeros((0, *xy.shape[1:]))
            areas = np.array([tr.area for tr in self.tracks])
            sim = oks_matrix(prev, xy, areas, self.sigmas, visible=scores >= self.keypoint_threshold)
        matched: dict[int, int] = {}  # detection -> track index
        for flat in np.argsort(-sim, axis=None):
            ti, di = np.unravel_index(flat, sim.shape)
            if sim[ti, di] < self.match_oks:
                break
            if di in matched or ti in matched.values():
                continue
            matched[int(di)] = int(ti)
        ids = np.full(len(xy), -1, np.int64)
        out = xy.copy()
        seen = set(matched.values())
        for ti, track in enumerate(self.tracks):
            if ti not in seen:
                track.misses += 1
        for di in range(len(xy)):
            if di in matched:
                track = self.tracks[matched[di]]
                track.xy, track.box, track.hits, track.misses = xy[di], boxes[di], track.hits + 1, 0
            else:
                track = Track(self._next_id, xy[di], boxes[di])
                self._next_id += 1
                if self.smoothing is not None:
                    track.smoother = OneEuroFilter.from_settings(self.smoothing)
                self.tracks.append(track)
            if track.smoother is not None:
                out[di] = track.smoother(xy[di], t)
            if track.hits >= self.min_hits:
                ids[di] = track.id
        self.tracks = [tr for tr in self.tracks
                       if tr.misses <= (self.max_misses if tr.hits >= self.min_hits else 0)]
        return ids, out
