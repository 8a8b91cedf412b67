"""``Poses``: the persons of one frame, as ``PoseEstimator`` returns them and a stream delivers them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgepose.pose_nms import instance_scores


@dataclass
class Poses:
    """The persons of one frame, in frame pixels: ``xy`` (N,K,2), ``scores`` (N,K), ``boxes`` (N,4) xyxy,
    ``box_scores`` (N,). ``meta`` holds how they were made (batch mode, per-stage seconds)."""

    xy: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    box_scores: np.ndarray
    meta: dict = field(default_factory=dict)
    ids: np.ndarray | None = None  # (N,) track ids from a stream (-1: not yet confirmed); None without tracking

    def __len__(self) -> int:
        return len(self.xy)

    def instance_scores(self, keypoint_threshold: float = 0.2) -> np.ndarray:
        """Per-person score: box score times the mean of keypoint scores above the threshold (MMPose's rescoring)."""
        return instance_scores(self.box_scores, self.scores, keypoint_threshold)

    def to_coco(self, image_id: int | str, category_id: int = 1, keypoint_threshold: float = 0.2) -> list[dict]:
        """COCO keypoint results (one dict per person)."""
        scores = self.instance_scores(keypoint_threshold)
        out = []
        for i, (xy, kp_scores, score) in enumerate(zip(self.xy, self.scores, scores, strict=True)):
            flat = np.concatenate([xy, kp_scores[:, None]], axis=1).reshape(-1)
            out.append({"image_id": image_id, "category_id": category_id,
                        "keypoints": [round(float(v), 3) for v in flat], "score": float(score)})
            if self.ids is not None:
                out[-1]["track_id"] = int(self.ids[i])
        return out
