"""Person detectors behind the backend protocol: a YOLOX-style ONNX detector and a literal registry.

Boxes come back as (N, 4) float32 x1, y1, x2, y2 in frame pixels, in the convention of COCO ``bbox`` fields
(x2 = x + w), clipped to [0, W] x [0, H], sorted by score (highest first). Boxes less than a pixel wide or tall
after clipping are dropped.
"""

from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np

from edgepose.backends import Backend, format_of, open_backend
from edgepose.errors import InputError, ModelError, OutputError
from edgepose.preprocess import validate_frame

YOLOX_STRIDES: tuple[int, ...] = (8, 16, 32)
LETTERBOX_PAD = 114
DEFAULT_INPUT_SIZE = 416  # YOLOX-Nano's training size; the size of a model with a free H/W when none is given


def letterbox(frame: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, float]:
    """``frame`` (H, W, 3) uint8 resized keeping its aspect into the top-left of an ``input_hw`` canvas of pad 114:
    the (1, 3, h, w) float32 blob and the resize ratio.

    The resized image is written channel by channel into a float blob filled with the pad value (no uint8 canvas,
    no transposed copy): the same values as padding a uint8 canvas and transposing it, in about 70% of the time.
    """
    height, width = input_hw
    ratio = min(height / frame.shape[0], width / frame.shape[1])
    new_w = max(1, min(width, int(frame.shape[1] * ratio)))
    new_h = max(1, min(height, int(frame.shape[0] * ratio)))
    small = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    blob = np.full((1, 3, height, width), LETTERBOX_PAD, dtype=np.float32)
    for channel in range(3):
        blob[0, channel, :new_h, :new_w] = small[:, :, channel]
    return blob, ratio


def _size_hw(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """``input_size`` (an int for a square, or (width, height)) as (height, width), checked: positive multiples of
    the largest YOLOX stride."""
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        hw = int(size), int(size)
    elif (isinstance(size, (tuple, list)) and len(size) == 2
          and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size)):
        hw = int(size[1]), int(size[0])
    else:
        raise InputError(f"input_size must be an int or a (width, height) pair of ints, got {size!r:.50}")
    step = max(YOLOX_STRIDES)
    if min(hw) <= 0 or hw[0] % step or hw[1] % step:
        raise InputError(f"detector input_size {hw[1]}x{hw[0]} (WxH) must be positive multiples of the largest "
                         f"stride {step}, e.g. 416, 320 or 256")
    return hw


def make_grid(input_hw: tuple[int, int], strides: tuple[int, ...] = YOLOX_STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """Anchor-point grid of a YOLOX head: cell offsets (A, 2) as (gx, gy) and strides (A, 1), float32.

    Row-major per level, levels in ``strides`` order (stride 8 first), as the raw YOLOX output is laid out.
    """
    height, width = input_hw
    grids, steps = [], []
    for stride in strides:
        gy, gx = np.meshgrid(np.arange(height // stride), np.arange(width // stride), indexing="ij")
        grids.append(np.stack([gx.ravel(), gy.ravel()], axis=1))
        steps.append(np.full((gx.size, 1), stride))
    return np.concatenate(grids).astype(np.float32), np.concatenate(steps).astype(np.float32)


class YoloxDetector:
    """YOLOX person detector on raw (not grid-decoded) ONNX output (1, A, 5 + C).

    Input: (1, 3, H, W) float32, BGR 0..255, letterboxed (aspect kept, image at top-left, pad 114).
    ``input_size`` (an int for a square, or (width, height)) runs a model whose H and W are free (symbolic) at that
    size, a multiple of 32 (default 416); a model with a fixed H and W runs at its own size only. YOLOX is fully
    convolutional: the packaged YOLOX-Nano has a free size, and at 256 it takes about half its 416 time with the
    same person recall on the COCO samples (benchmarks/results/detector.json).
    A box is kept when ``class_id`` is its best class and objectness * class score > ``score_threshold``;
    overlapping boxes are then suppressed with ``cv2.dnn.NMSBoxes`` at IoU ``nms_threshold``.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        score_threshold: float = 0.3,
        nms_threshold: float = 0.45,
        class_id: int = 0,
        backend_options: dict[str, Any] | None = None,
        input_size: int | tuple[int, int] | None = None,
    ) -> None:
        if not 0.0 <= score_threshold <= 1.0:
            raise InputError(f"score_threshold must be in [0, 1], got {score_threshold}")
        if not 0.0 < nms_threshold <= 1.0:
            raise InputError(f"nms_threshold must be in (0, 1], got {nms_threshold}")
        if int(class_id) != class_id or class_id < 0:
            raise InputError(f"class_id must be a non-negative integer, got {class_id!r}")
        self.path = os.fspath(path)
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.class_id = int(class_id)
        requested = _size_hw(input_size)
        options = dict(backend_options or {})
        if format_of(self.path).backend == "onnxruntime":  # one frame per call: a batch axis rewrite gains nothing
            options.setdefault("batch_rewrite", False)
        self.backend: Backend = open_backend(self.path, **options)
        try:
            self._check_model(requested)
        except (ModelError, InputError):  # a fixed-size model asked for another size
            self.backend.close()
            raise
        self._grid, self._strides = make_grid(self.input_hw)

    def _check_model(self, requested: tuple[int, int] | None) -> None:
        inputs, outputs = self.backend.inputs, self.backend.outputs
        where = f"detector model {self.path}"
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(
                f"{where} must have one input and one output (a YOLOX export), it has inputs "
                f"{[s.describe() for s in inputs]} and outputs {[s.describe() for s in outputs]}"
            )
        spec, out = inputs[0], outputs[0]
        if spec.dtype != np.float32:
            raise ModelError(f"{where}: input {spec.describe()} must be float32")
        if len(spec.shape) != 4 or spec.shape[1] != 3 or spec.shape[0] not in (1, None):
            raise ModelError(f"{where}: input {spec.describe()} must be 4-D NCHW with batch 1 and 3 (BGR) channels")
        height, width = spec.shape[2], spec.shape[3]
        step = max(YOLOX_STRIDES)
        if (height is None) != (width is None):
            raise ModelError(f"{where}: input {spec.describe()} has one dynamic side; free both H and W or neither")
        if height is None:
            height, width = requested or (DEFAULT_INPUT_SIZE, DEFAULT_INPUT_SIZE)
        elif requested is not None and requested != (height, width):
            raise InputError(
                f"{where} has a fixed {width}x{height} (WxH) input, so it cannot run at input_size "
                f"{requested[1]}x{requested[0]}; use a model with a free input size (deploy.quantize.detector."
                "free_input_size rewrites a YOLOX export) or the packaged one"
            )
        if height % step or width % step:
            raise ModelError(f"{where}: input size {height}x{width} must be divisible by the largest stride {step}")
        self.input_name = spec.name
        self.output_name = out.name
        self.input_hw = (int(height), int(width))
        self.num_anchors = sum((height // s) * (width // s) for s in YOLOX_STRIDES)
        if len(out.shape) != 3 or out.shape[0] not in (1, None):
            raise ModelError(f"{where}: output {out.describe()} must have shape (1, anchors, 5 + classes)")
        if out.shape[1] not in (self.num_anchors, None):
            raise ModelError(
                f"{where}: output {out.describe()} has {out.shape[1]} anchors, but a {height}x{width} input with "
                f"strides {YOLOX_STRIDES} gives {self.num_anchors}; only raw (not grid-decoded) YOLOX outputs "
                "of strides 8/16/32 are supported"
            )
        if out.shape[2] is not None and out.shape[2] < 6 + self.class_id:
            raise ModelError(
                f"{where}: output {out.describe()} has {out.shape[2] - 5} class scores, too few for class_id "
                f"{self.class_id} (need 5 box/objectness values plus the class scores)"
            )

    @property
    def input_size(self) -> tuple[int, int]:
        """Model input size as (width, height)."""
        return self.input_hw[1], self.input_hw[0]

    def preprocess(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        """Letterbox ``frame`` into the (1, 3, H, W) float32 input; returns the blob and the resize ratio."""
        return letterbox(frame, self.input_hw)

    def decode(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw (1, A, 5 + C) output -> candidate boxes (M, 4) xyxy in input pixels and scores (M,), pre-NMS."""
        if raw.ndim != 3 or raw.shape[0] != 1 or raw.shape[1] != self.num_anchors or raw.shape[2] < 6 + self.class_id:
            raise OutputError(
                f"detector output has shape {list(raw.shape)}, expected [1, {self.num_anchors}, 5 + classes] with "
                f"at least {self.class_id + 1} classes"
            )
        pred = raw[0]
        if not np.isfinite(pred[:, :5]).all() or not np.isfinite(pred[:, 5 + self.class_id]).all():
            raise OutputError(f"detector {self.path} produced NaN or Inf values; check the model and the input")
        scores = pred[:, 4] * pred[:, 5 + self.class_id]
        keep = np.flatnonzero(scores > self.score_threshold)
        if keep.size:
            keep = keep[np.argmax(pred[keep, 5:], axis=1) == self.class_id]
        cand, strides = pred[keep], self._strides[keep]
        centre = (cand[:, :2] + self._grid[keep]) * strides
        with np.errstate(over="ignore"):
            half = np.exp(cand[:, 2:4]) * strides * 0.5
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        if not np.isfinite(boxes).all():
            raise OutputError(f"detector {self.path} decoded to non-finite boxes (exp overflow of the size terms)")
        return boxes.astype(np.float32), scores[keep].astype(np.float32)

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Detect people: (boxes (N, 4) float32 xyxy in frame pixels, scores (N,) float32), highest score first."""
        frame = validate_frame(frame)
        blob, ratio = self.preprocess(frame)
        raw = self.backend.infer({self.input_name: blob})[self.output_name]
        return self.postprocess(raw, ratio, frame.shape[:2])

    def postprocess(self, raw: np.ndarray, ratio: float, frame_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Raw output -> final boxes and scores in frame pixels: decode, undo the letterbox, clip, NMS."""
        boxes, scores = self.decode(raw)
        boxes /= ratio
        height, width = frame_hw
        np.clip(boxes[:, 0::2], 0, width, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, height, out=boxes[:, 1::2])
        sized = (boxes[:, 2] - boxes[:, 0] >= 1.0) & (boxes[:, 3] - boxes[:, 1] >= 1.0)  # drop sub-pixel slivers
        boxes, scores = boxes[sized], scores[sized]
        if not len(boxes):
            return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
        kept = np.asarray(cv2.dnn.NMSBoxes(xywh, scores, self.score_threshold, self.nms_threshold), dtype=np.int64)
        kept = kept.reshape(-1)
        kept = kept[np.argsort(-scores[kept], kind="stable")]
        return boxes[kept], scores[kept]

    def close(self) -> None:
        """Release the backend."""
        self.backend.close()

    def __enter__(self) -> YoloxDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# kind -> detector class; a literal dict so every detector is one grep away.
DETECTORS = {"yolox": YoloxDetector}


def open_detector(path: str | os.PathLike, kind: str = "yolox", **kwargs: Any) -> YoloxDetector:
    """Open a person detector of ``kind`` (see ``DETECTORS``) on the model at ``path``."""
    if kind not in DETECTORS:
        raise InputError(f"unknown detector kind {kind!r}; valid kinds: {sorted(DETECTORS)}")
    return DETECTORS[kind](path, **kwargs)
