"""The poses message the node publishes (std_msgs/String holding JSON), and message time stamps.

    {"stamp": {"sec": 12, "nanosec": 500000000}, "frame_id": "camera",
     "keypoint_names": ["nose", ...],
     "persons": [{"id": 3, "box": [x1, y1, x2, y2], "box_score": 0.93, "score": 0.71,
                  "keypoints": [[x, y, score], ...]}]}

Persons are ``edgepose.video.records.person_records``, as in ``edgepose predict``'s JSON lines: frame pixels;
``id`` is the track id, -1 for a person not yet confirmed by the tracker (or when tracking is off); ``score`` is the
person score (box score times the mean of the keypoint scores above 0.2, as ``Poses.instance_scores``). A
non-finite value is written as null.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from edgepose.errors import InputError
from edgepose.video.records import person_records


def stamp_to_dict(stamp: object) -> dict:
    """A builtin_interfaces/Time-like ``stamp`` -> ``{"sec": int, "nanosec": int}``."""
    return {"sec": int(getattr(stamp, "sec", 0)), "nanosec": int(getattr(stamp, "nanosec", 0))}


def stamp_seconds(stamp: object) -> float:
    """A builtin_interfaces/Time-like ``stamp`` in seconds: ``sec + nanosec * 1e-9``."""
    return int(getattr(stamp, "sec", 0)) + int(getattr(stamp, "nanosec", 0)) * 1e-9


def poses_to_dict(poses, stamp: object, frame_id: str, keypoint_names: Sequence[str]) -> dict:
    """The JSON-ready payload of one frame's ``poses`` (an ``edgepose.pipeline.Poses``; ``poses.ids`` None: every
    id -1); ``stamp`` and ``frame_id`` come from the image's header."""
    n, k = poses.scores.shape
    if len(keypoint_names) != k:
        raise InputError(f"poses_to_dict needs {k} keypoint names, got {len(keypoint_names)}")
    if poses.ids is None:
        poses = replace(poses, ids=np.full(n, -1))
    return {"stamp": stamp_to_dict(stamp), "frame_id": str(frame_id), "keypoint_names": list(keypoint_names),
            "persons": person_records(poses)}


def payload_to_json(payload: dict) -> str:
    """Compact JSON of a payload (strict: no NaN tokens)."""
    return json.dumps(payload, separators=(",", ":"), allow_nan=False)
