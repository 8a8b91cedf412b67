"""Per-input work of ``edgepose predict``: one image, video or camera -> COCO results (+ annotated media)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from edgepose.cli.input_sources import Item
from edgepose.errors import InputError
from edgepose.io import read_image, write_image

if TYPE_CHECKING:
    from edgepose.video.stream import StreamOptions


class ItemRunner:
    """Runs a PoseEstimator over items, writing annotated media under ``out``."""

    def __init__(self, estimator, out: str, boxes: dict | None = None, ids: dict | None = None,
                 draw: bool = True, stream_options: StreamOptions | None = None) -> None:
        self.estimator = estimator
        self.out = out
        self.boxes = boxes
        self.ids = ids
        self.draw = draw
        self.stream_options = stream_options

    def run(self, item: Item) -> list[dict]:
        """COCO results of one item; raises InputError for an unusable item."""
        if item.kind == "image":
            return self._image(item.path)
        if self.boxes is not None:
            raise InputError(f"{item.path} is a video: per-frame boxes come from --detector, not --boxes")
        from edgepose.cli.predict_stream import run_stream

        return run_stream(self.estimator, item.path, self.out, self.draw, self.stream_options)

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
