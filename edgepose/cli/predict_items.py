"""Per-input work of ``edgepose predict``: one image, video or camera -> COCO results (+ annotated media)."""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING

import numpy as np

from edgepose.affine import validate_boxes
from edgepose.cli.input_sources import Item
from edgepose.errors import InputError
from edgepose.io import DEFAULT_MAX_PIXELS, read_image, write_image
from edgepose.redact import redact

if TYPE_CHECKING:
    from edgepose.video.stream import StreamOptions


def usable_boxes(name: str, boxes: np.ndarray, scores: np.ndarray,
                 frame_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The given boxes the estimator can use on a frame of ``frame_shape``; the others (entirely outside the
    frame, coordinates too large) are dropped with one warning for ``name`` saying how many and the first reason."""
    keep, reasons = [], []
    for i, box in enumerate(boxes):
        try:
            validate_boxes(box[None], frame_shape)
            keep.append(i)
        except InputError as exc:
            reasons.append(f"box {i} {str(exc).removeprefix('box 0 ')}")
    if reasons:
        warnings.warn(f"{name}: dropped {len(reasons)} of {len(boxes)} box(es), the others are used "
                      f"(first: {reasons[0]})", stacklevel=2)
    return boxes[keep], scores[keep]


class ItemRunner:
    """Runs a PoseEstimator over items, writing annotated media under ``out``."""

    def __init__(self, estimator, out: str, boxes: dict | None = None, ids: dict | None = None,
                 draw: bool = True, stream_options: StreamOptions | None = None,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
        self.estimator = estimator
        self.out = out
        self.boxes = boxes
        self.ids = ids
        self.draw = draw
        self.stream_options = stream_options
        self.max_pixels = max_pixels

    def run(self, item: Item) -> list[dict]:
        """COCO results of one item; raises InputError for an unusable item."""
        if item.kind == "image":
            return self._image(item.path)
        if self.boxes is not None:
            raise InputError(f"{redact(item.path)} is a video: per-frame boxes come from --detector, not --boxes")
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
        frame = read_image(path, self.max_pixels)
        name = os.path.basename(path)
        if self.boxes is not None:
            boxes, scores = self.boxes.get(name, (np.zeros((0, 4)), np.zeros(0, np.float32)))
            poses = self.estimator(frame, *usable_boxes(name, boxes, scores, frame.shape))
        else:
            poses = self.estimator(frame)
        if self.draw:
            write_image(os.path.join(self.out, "vis", name), self._annotate(frame, poses))
        return poses.to_coco(image_id)
