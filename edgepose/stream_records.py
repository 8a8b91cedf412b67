"""One JSON-ready record per stream frame (``edgepose predict`` writes them as JSON lines; the ROS 2 node too)."""

from __future__ import annotations

import numpy as np


def person_records(poses, keypoint_threshold: float = 0.2) -> list[dict]:
    """Per person: track id (-1 unconfirmed, absent without tracking), box xyxy, box score, instance score and
    keypoints as [x, y, score] rows in frame pixels."""
    scores = poses.instance_scores(keypoint_threshold)
    people = []
    for i in range(len(poses)):
        person = {"box": [round(float(v), 2) for v in poses.boxes[i]],
                  "box_score": round(float(poses.box_scores[i]), 4),
                  "score": round(float(scores[i]), 4),
                  "keypoints": np.round(np.concatenate([poses.xy[i], poses.scores[i][:, None]], axis=1), 3).tolist()}
        if poses.ids is not None:
            person = {"id": int(poses.ids[i]), **person}
        people.append(person)
    return people


def frame_record(result) -> dict:
    """A StreamResult as a dict: frame index, time (s), whether the detector ran, delivered FPS and the persons."""
    return {"frame": result.index, "time": round(float(result.time), 6), "detected": bool(result.detected),
            "fps": round(float(result.fps), 2), "persons": person_records(result.poses)}
