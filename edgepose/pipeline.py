"""PoseEstimator: person boxes -> crop -> one batched inference -> decode -> keypoints in frame pixels."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from typing import TYPE_CHECKING

import numpy as np

from edgepose.affine import Affine, validate_box_scores, validate_boxes
from edgepose.backends import Backend, open_backend
from edgepose.card import ModelCard
from edgepose.coco.layout import flip_index
from edgepose.codecs import build_codec
from edgepose.contract import bind
from edgepose.errors import CardError, InputError
from edgepose.foreign import card_for_model, resolve_model
from edgepose.pose_nms import pose_nms
from edgepose.poses import Poses
from edgepose.preprocess import Cropper, validate_frame

if TYPE_CHECKING:
    from edgepose.video.stream import PoseStream, StreamOptions

STAGES = ("detect", "crop", "infer", "decode")


def average_flip(codec, plain: dict[str, np.ndarray], flipped: dict[str, np.ndarray],
                 flip_index: np.ndarray) -> dict[str, np.ndarray]:
    """The flip test: mean of the outputs and the codec's flip-back of the mirrored crop's outputs."""
    back = codec.flip_back(flipped, flip_index)
    return {k: (v.astype(np.float32) + back[k]) * 0.5 for k, v in plain.items()}


def decode_to_frame(codec, outputs: dict[str, np.ndarray], affine: Affine) -> tuple[np.ndarray, np.ndarray]:
    """Codec outputs -> keypoints (N,K,2) float32 in frame pixels and scores (N,K) float32.

    The one decode path of the runtime; training-side evaluation calls it too, so both score the same numbers.
    """
    xy, scores = codec.decode(outputs)
    return affine.inverse().apply(xy).astype(np.float32), scores.astype(np.float32)


def as_card(card: object) -> ModelCard:
    """A ModelCard from a ModelCard, a dict of its fields, or a YAML/JSON file path; CardError for anything else."""
    if isinstance(card, ModelCard):
        return card
    if isinstance(card, dict):
        return ModelCard.from_dict(card)
    if isinstance(card, (str, os.PathLike)):
        return ModelCard.from_file(card)
    raise CardError(f"card must be a ModelCard, a dict of card fields or a YAML/JSON file path, got "
                    f"{type(card).__name__}")


def _check_arguments(model: object, detector: object, pose_nms: object) -> None:
    """InputError (not a TypeError deep inside) for a model, detector or pose_nms of the wrong kind."""
    if not isinstance(model, (str, os.PathLike, Backend)):
        raise InputError(f"model must be a model file path or an open Backend, got {type(model).__name__}")
    if detector is not None and not (callable(detector) or isinstance(detector, (str, os.PathLike))):
        raise InputError(f"detector must be a detector file path or a callable frame -> (boxes, scores), got "
                         f"{type(detector).__name__}")
    if pose_nms is not None and not (isinstance(pose_nms, (int, float)) and 0 <= pose_nms <= 1):
        raise InputError(f"pose_nms must be an OKS threshold between 0 and 1 (or None), got {pose_nms!r:.50}")


def _empty_poses(k: int, meta: dict) -> Poses:
    return Poses(np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.float32), np.zeros((0, 4), np.float32),
                 np.zeros((0,), np.float32), meta)


class PoseEstimator:
    """Top-down pose estimation on BGR frames.

    ``model`` is a model path (backend chosen by suffix), an MMDeploy SDK model folder or an open Backend. The card
    comes from ``card`` (a ModelCard, a dict of its fields or a YAML/JSON path) when given, else from the model's
    embedded metadata, else from the MMDeploy folder's pipeline.json, else (with an ``InferredCardWarning``) from the
    output shapes of a bare RTMPose SimCC model (``edgepose.foreign``).
    ``detector`` (a path or a callable ``frame -> (boxes, scores)``) finds persons when the caller gives no boxes.
    Pose NMS (OKS threshold ``pose_nms``) removes duplicate poses of detector boxes; caller boxes are kept as given.

    Thread safety: one estimator may be shared by threads. With the CPU crop (per-thread buffers) and ONNX
    Runtime (thread-safe sessions) calls run in parallel; other backends and the GPU crop are serialised by a lock.
    Detectors are serialised the same way: the YOLOX detector runs in parallel on ONNX Runtime; a callable runs one
    call at a time unless it has ``thread_safe = True``.

    ``crop="cuda"`` crops on the GPU with the fused kernel (``edgepose.cuda.crop.CudaCropper``) straight into
    device memory that the backend reads without a host round trip (backends with ``infer_device``: TensorRT,
    PyTorch on CUDA); it shares the backend's CUDA context and stream when the backend has them.

    Many persons are cropped, inferred and decoded ``max_batch`` at a time (memory stays bounded for any number of
    boxes; each person's result does not depend on the others). Set the attribute to change it.
    """

    max_batch: int = 64

    def __init__(
        self,
        model: str | os.PathLike | Backend,
        card: ModelCard | dict | str | os.PathLike | None = None,
        detector=None,
        flip: bool = False,
        pose_nms: float | None = 0.9,
        backend_options: dict | None = None,
        crop: str = "cpu",
    ) -> None:
        options = dict(backend_options or {})
        if crop not in ("cpu", "cuda"):
            raise InputError(f"crop must be 'cpu' (OpenCV) or 'cuda' (the fused kernel), got {crop!r}")
        self.crop_device = crop
        self._lock = threading.Lock()
        # Close only what this estimator opened; backends and detectors passed in belong to the caller.
        self._owned: list = []
        card = None if card is None else as_card(card)  # a ModelCard, a dict of its fields or a file
        _check_arguments(model, detector, pose_nms)
        model, folder = resolve_model(model)  # an MMDeploy SDK folder: its net file; the card comes from the folder
        opening = options if card is None else {**options, "card": card}  # the explicit card opens any format
        self.backend = model if isinstance(model, Backend) else self._own(open_backend(model, **opening))
        try:
            self._setup(card, detector, flip, pose_nms, options, folder)
        except BaseException:
            self.close()
            raise

    def _setup(self, card, detector, flip: bool, pose_nms: float | None, options: dict, folder: str | None) -> None:
        source = getattr(self.backend, "path", "model")
        card = self.card = card_for_model(self.backend, source, folder) if card is None else as_card(card)
        self.binding = bind(card, self.backend, source)
        self.codec = build_codec(card)
        self.cropper = Cropper(card, self.binding.input.dtype)
        self.gpu_cropper = None
        if self.crop_device == "cuda":
            self.gpu_cropper = self._own(self._cuda_cropper(card, flip))
        self.flip = flip
        self.flip_index = flip_index(card.num_keypoints, card.flip_pairs)
        self.pose_nms_threshold = pose_nms
        self.sigmas = np.asarray(card.sigmas)
        if detector is not None and not callable(detector):
            from edgepose.detector import open_detector

            detector = self._own(open_detector(detector, backend_options=options))
        self.detector = detector
        shared = getattr(self.backend, "thread_safe", False) and self.gpu_cropper is None
        self._serial = contextlib.nullcontext() if shared else self._lock
        safe_detector = getattr(detector, "thread_safe", False) or getattr(getattr(detector, "backend", None),
                                                                           "thread_safe", False)
        self._detect_serial = contextlib.nullcontext() if safe_detector else threading.Lock()

    def _cuda_cropper(self, card: ModelCard, flip: bool):
        """The GPU cropper feeding this backend's device input."""
        if not hasattr(self.backend, "infer_device"):
            raise InputError(f"crop='cuda' needs a backend that reads device memory (TensorRT, PyTorch on CUDA); "
                             f"{type(self.backend).__name__} does not")
        if flip:
            raise InputError("crop='cuda' does not do the flip test yet: use crop='cpu' with flip=True")
        from edgepose.cuda.crop import CudaCropper

        session = getattr(self.backend, "session", None)
        return CudaCropper(card, int(getattr(self.backend, "max_batch", 64) or 64),
                           stream=getattr(self.backend, "stream", None),
                           context=getattr(session, "context", None), dtype=self.binding.input.dtype)

    def _own(self, resource):
        self._owned.append(resource)
        return resource

    def __enter__(self) -> PoseEstimator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the backend and detector this estimator opened (not those passed in)."""
        while self._owned:
            self._owned.pop().close()

    def crop(self, frame: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, Affine]:
        """The (N,3,H,W) model batch of (N,4) xyxy boxes and its Affine; the batch is valid until the next call.

        With ``crop="cuda"`` the batch is a device array (valid until the next call)."""
        if self.gpu_cropper is not None:
            return self.gpu_cropper(frame, boxes)
        return self.cropper(frame, boxes, reuse=True)

    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Run the model on an (N,3,H,W) batch (with the flip test when enabled); canonical codec outputs."""
        if self.gpu_cropper is not None:  # a device batch: the backend reads it where it is
            self.gpu_cropper.synchronize()
            return self.binding.rename(self.backend.infer_device(batch))
        if not self.flip:
            raw = self.backend.infer({self.binding.input.name: batch})
            return self.binding.rename(raw)
        both = np.concatenate([batch, batch[..., ::-1]])
        outputs = self.binding.rename(self.backend.infer({self.binding.input.name: both}))
        n = len(batch)
        return average_flip(self.codec, {k: v[:n] for k, v in outputs.items()}, {k: v[n:] for k, v in outputs.items()},
                            self.flip_index)

    def _infer_on_device(self, frame: np.ndarray, boxes: np.ndarray, timings: dict) -> tuple[dict, Affine, float]:
        """GPU crop + inference in chunks of the cropper's (the engine profile's) max batch; stage times added."""
        cropper = self.gpu_cropper
        affine = cropper.affine(boxes)
        parts: dict[str, list] = {}
        for start in range(0, len(affine), cropper.max_batch):
            t0 = time.perf_counter()
            batch = cropper.warp(frame, affine[start:start + cropper.max_batch])
            t1 = time.perf_counter()
            for name, value in self.infer(batch).items():
                parts.setdefault(name, []).append(value)
            timings["crop"] += t1 - t0
            timings["infer"] += time.perf_counter() - t1
        return {k: np.concatenate(v) for k, v in parts.items()}, affine, time.perf_counter()

    def decode(self, outputs: dict[str, np.ndarray], affine: Affine) -> tuple[np.ndarray, np.ndarray]:
        """Codec outputs -> keypoints (N,K,2) in frame pixels and scores (N,K)."""
        return decode_to_frame(self.codec, outputs, affine)

    def detect(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The detector's person boxes (N,4 xyxy float64) and scores (N,) float32 in a BGR frame."""
        if self.detector is None:
            raise InputError("no boxes given and no detector configured: pass boxes=... or detector=DET.onnx")
        with self._detect_serial:
            boxes, scores = self.detector(validate_frame(frame))
        boxes = validate_boxes(boxes)
        return boxes, validate_box_scores(scores, len(boxes))

    def stream(self, source, options: StreamOptions | None = None, **overrides) -> PoseStream:
        """Poses for every frame of ``source`` (video path, image folder, camera index or URL, iterable of
        frames), with decoding, detection and pose inference overlapped in threads; see ``edgepose.video.stream``.
        ``options`` is a ready ``StreamOptions``; keyword ``overrides`` are StreamOptions fields (on top of it).

            for result in estimator.stream("walk.mp4", detect_every=3, smoothing={"min_cutoff": 1.0}):
                result.poses.xy, result.poses.ids
        """
        from edgepose.video.stream import PoseStream, StreamOptions

        if options is None:
            options = StreamOptions(**overrides)
        elif overrides:
            options = dataclasses.replace(options, **overrides)
        return PoseStream(self, source, options)

    def _estimate(self, frame: np.ndarray, boxes: np.ndarray, timings: dict) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (N,K,2) and scores (N,K) of (N,4) valid boxes, ``max_batch`` persons at a time; stage times
        are added to ``timings``."""
        affine = self.cropper.affine(boxes) if self.gpu_cropper is None else None
        step = max(1, int(self.max_batch))
        parts = []
        for start in range(0, len(boxes), step):
            t1 = time.perf_counter()
            with self._serial:
                if self.gpu_cropper is not None:
                    outputs, part, t2 = self._infer_on_device(frame, boxes[start:start + step], timings)
                else:
                    part = affine if len(affine) <= step else affine[start:start + step]
                    batch = self.cropper.warp(frame, part, reuse=True)
                    t2 = time.perf_counter()
                    outputs = self.infer(batch)
            t3 = time.perf_counter()
            parts.append(self.decode(outputs, part))
            if self.gpu_cropper is None:
                timings["crop"] += t2 - t1
                timings["infer"] += t3 - t2
            timings["decode"] += time.perf_counter() - t3
        if len(parts) == 1:  # the usual case: no copy
            return parts[0]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def __call__(self, frame: np.ndarray, boxes: np.ndarray | None = None,
                 box_scores: np.ndarray | None = None, nms: bool | None = None) -> Poses:
        """Estimate the poses of the persons in ``frame``: those in ``boxes`` (N,4 xyxy) or the detector's.

        Pose NMS runs on detector boxes and not on caller boxes, unless ``nms`` says otherwise."""
        frame = validate_frame(frame)
        timings = dict.fromkeys(STAGES, 0.0)
        meta = {"batch_mode": getattr(self.backend, "batch_mode", "dynamic"), "seconds": timings}
        if getattr(self.backend, "batch_note", None):  # a fixed batch of 1: rewritten, or why it is looped
            meta["batch_note"] = self.backend.batch_note
        t0 = time.perf_counter()
        detected = boxes is None
        if detected:
            boxes, box_scores = self.detect(frame)
        boxes = validate_boxes(boxes, None if detected else frame.shape)
        if box_scores is None:
            box_scores = np.ones(len(boxes), np.float32)
        else:
            box_scores = validate_box_scores(box_scores, len(boxes))
        t1 = time.perf_counter()
        timings["detect"] = t1 - t0
        if len(boxes) == 0:
            return _empty_poses(self.card.num_keypoints, meta)
        xy, scores = self._estimate(frame, boxes, timings)
        poses = Poses(xy, scores, boxes.astype(np.float32), box_scores, meta)
        if nms is None:
            nms = detected
        if nms and self.pose_nms_threshold is not None and len(poses) > 1:
            keep = pose_nms(xy, scores, poses.boxes, box_scores, self.sigmas, threshold=self.pose_nms_threshold)
            poses = Poses(xy[keep], scores[keep], poses.boxes[keep], box_scores[keep], meta)
        return poses
