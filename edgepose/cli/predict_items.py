"""Per-input work of ``edgepose predict``: one image or one video -> COCO results (+ annotated media)."""

from __future__ import annotations

import os

import cv2
import numpy as np

from edgepose.errors import InputError
from edgepose.io import atomic_path, read_image, write_image
from edgepose.sources import Item, video_frames


class ItemRunner:
    """Runs a PoseEstimator over items, writing annotated media under ``out``."""

    def __init__(self, estimator, out: str, boxes: dict | None = None, ids: dict | None = None,
                 draw: bool = True) -> None:
        self.estimator = estimator
        self.out = out
        self.boxes = boxes
        self.ids = ids
        self.draw = draw

    def run(self, item: Item) -> list[dict]:
        """COCO results of one item; raises InputError for an unusable item."""
        return self._image(item.path) if item.kind == "image" else self._video(item.path)

    def _image_id(self, path: str):
        name = os.path.basename(path)
        if self.ids is None:
            return os.path.splitext(name)[0]
        if name not in self.ids:
            raise InputError(f"{name} is not an image of the --coco file")
        return self.ids[name]

    def _annotate(self, frame: np.ndarray, poses) -> np.ndarray:
        from edgepose.draw import draw_poses

        return draw_poses(frame, poses.xy, poses.scores, self.estimator.card.skeleton, boxes=poses.boxes)

    def _image(self, path: str) -> list[dict]:
        image_id = self._image_id(path)
        frame = read_image(path)
        if self.boxes is not None:
            boxes, scores = self.boxes.get(os.path.basename(path), (np.zeros((0, 4)), np.zeros(0, np.float32)))
            poses = self.estimator(frame, boxes, scores)
        else:
            poses = self.estimator(frame)
        if self.draw:
            write_image(os.path.join(self.out, "vis", os.path.basename(path)), self._annotate(frame, poses))
        return poses.to_coco(image_id)

    def _video(self, path: str) -> list[dict]:
        if self.boxes is not None:
            raise InputError(f"{path} is a video: per-frame boxes come from --detector, not --boxes")
        frames, fps, size = video_frames(path)
        stem = os.path.splitext(os.path.basename(path))[0]
        results: list[dict] = []
        target = os.path.join(self.out, f"{stem}_pose.mp4")
        if not self.draw:
            for index, frame in enumerate(frames):
                results += self.estimator(frame).to_coco(f"{stem}/{index:06d}")
            return results
        with atomic_path(target) as tmp:
            writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
            if not writer.isOpened():
                raise InputError(f"OpenCV cannot write an mp4 video to {target}")
            try:
                for index, frame in enumerate(frames):
                    poses = self.estimator(frame)
                    results += poses.to_coco(f"{stem}/{index:06d}")
                    writer.write(self._annotate(frame, poses))
            finally:
                writer.release()
        return results
