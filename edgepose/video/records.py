"""One JSON-ready record per stream frame (``edgepose predict`` writes them as JSON lines; the ROS 2 node too)."""

from __future__ import annotations

import math

import numpy as np

DECIMALS = 4


def number(value: float) -> float | None:
    """A float rounded to ``DECIMALS`` places for JSON; NaN and Inf become None (null), keeping the JSON strict."""
    value = float(value)
    return round(value, DECIMALS) if math.isfinite(value) else None


def person_records(poses, keypoint_threshold: float = 0.2) -> list[dict]:
    """Per person of a ``Poses``: track id (-1 unconfirmed; absent without tracking), box xyxy, box score, person
    score (``Poses.instance_scores``) and keypoints as [x, y, score] rows in frame pixels."""
    scores = poses.instance_scores(keypoint_threshold) if len(poses) else np.zeros(0)
    people = []
    for i in range(len(poses)):
        person = {"box": [number(v) for v in poses.boxes[i]], "box_score": number(poses.box_scores[i]),
                  "score": number(scores[i]),
                  "keypoints": [[number(x), number(y), number(s)] for (x, y), s in zip(poses.xy[i], poses.scores[i],
                                                                                     strict=True)]}
        if poses.ids is not None:
            person = {"id": int(poses.ids[i]), **person}
        people.append(person)
    return people


def frame_record(result) -> dict:
    """A StreamResult as a dict: frame index, time (s), whether the detector ran, delivered FPS and the persons."""
    return {"frame": result.index, "time": round(float(result.time), 6), "detected": bool(result.detected),
            "fps": round(float(result.fps), 2), "persons": person_records(result.poses)}
