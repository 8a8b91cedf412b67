"""One benchmark configuration, opened once: the PoseEstimator users run, timed per call and per stage."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from edgepose.backends.formats import FORMATS, suffix_of
from edgepose.bench.frames import spread_boxes
from edgepose.errors import InputError
from edgepose.pipeline import STAGES, PoseEstimator

ALL_STAGES = (*STAGES, "end_to_end")
GPU_PROVIDER_MARKS = ("CUDA", "Tensorrt", "ROCM", "MIGraphX")
DETECTOR_PERSONS = "det"  # persons value: as many as the detector finds, pose NMS on


@dataclass(frozen=True)
class Config:
    """One measured configuration: a model file (= backend and precision), persons per frame, threads, provider.

    ``persons`` is a count (boxes handed to the estimator: the detector's, replicated to that count, or seeded
    person-shaped boxes without a detector) or ``"det"`` (the detector's boxes as found, pose NMS on).
    ``threads`` / ``provider`` None leave ONNX Runtime's default; they apply to ``.onnx`` models only.
    """

    model: str
    persons: int | str
    threads: int | None = None
    provider: str | None = None
    card: str | None = None
    detector: str | None = None

    @property
    def backend(self) -> str:
        """The backend the model's suffix selects."""
        fmt = FORMATS.get(suffix_of(self.model))
        return fmt.backend if fmt else "unknown"

    @property
    def label(self) -> str:
        """Short human-readable name, unique within a sweep."""
        provider = (self.provider or "default").replace("ExecutionProvider", "")
        threads = "default" if self.threads is None else self.threads
        return f"{os.path.basename(self.model)} {provider} t={threads} p={self.persons}"

    def backend_options(self) -> dict:
        """PoseEstimator ``backend_options`` (also given to the detector)."""
        if self.backend != "onnxruntime":
            return {}
        options: dict = {}
        if self.threads is not None:
            options["threads"] = self.threads
        if self.provider is not None:
            options["providers"] = tuple(self.provider.split("+"))
        return options


def peak_rss_mib() -> float | None:
    """This process's resident-set high-water mark (VmHWM in /proc/self/status), MiB; None where unreadable."""
    try:
        with open("/proc/self/status", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    except (ImportError, OSError):
        return None


class _Replicated:
    """A detector callable returning exactly ``count`` boxes: the detector's, repeated in order (``fallback``
    when it finds none). The detector still runs on every frame, so its time is measured."""

    def __init__(self, detector, count: int, fallback: np.ndarray) -> None:
        self.detector, self.count, self.fallback = detector, count, fallback

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, scores = self.detector(frame)
        if len(boxes) == 0:
            boxes, scores = self.fallback, np.ones(len(self.fallback), np.float32)
        index = np.arange(self.count) % len(boxes)
        return boxes[index], scores[index]


class Measurer:
    """Opens ``config``'s estimator on ``frame`` and times ``estimator(frame, boxes)`` calls."""

    def __init__(self, config: Config, frame: np.ndarray, seed: int = 0) -> None:
        self.config, self.frame = config, frame
        options = config.backend_options()
        self._detector = None
        if config.detector is not None:
            from edgepose.detector import open_detector

            self._detector = open_detector(config.detector, backend_options=options)
        self.boxes: np.ndarray | None = None
        try:
            self.estimator = self._open(config, frame, seed, options)
        except BaseException:
            self.close()
            raise

    def _open(self, config: Config, frame: np.ndarray, seed: int, options: dict) -> PoseEstimator:
        if config.persons == DETECTOR_PERSONS:
            if self._detector is None:
                raise InputError("persons 'det' needs a detector: pass --detector DET.onnx or give person counts")
            self.box_source = "detector"
            return PoseEstimator(config.model, card=config.card, detector=self._detector, backend_options=options)
        if isinstance(config.persons, bool) or not isinstance(config.persons, int) or config.persons < 1:
            raise InputError(f"persons must be a positive count or '{DETECTOR_PERSONS}', got {config.persons!r}")
        fallback = spread_boxes(config.persons, frame.shape, seed)
        if self._detector is None:
            self.boxes, self.box_source = fallback, "seeded person-shaped boxes"
            detector = None
        else:
            detector, self.box_source = _Replicated(self._detector, config.persons, fallback), "detector, replicated"
        # Replicated boxes give identical poses, which pose NMS would merge: every box stays a person here.
        return PoseEstimator(config.model, card=config.card, detector=detector, pose_nms=None, backend_options=options)

    def describe(self) -> dict:
        """What was opened: backend, execution providers in use, batch mode, input dtype, card name, pid."""
        backend = self.estimator.backend
        return {"backend": self.config.backend, "providers_used": list(getattr(backend, "providers", []) or []),
                "batch_mode": getattr(backend, "batch_mode", "dynamic"),
                "input_dtype": str(np.dtype(self.estimator.binding.input.dtype)), "card_name": self.estimator.card.name,
                "boxes": self.box_source, "pid": os.getpid()}

    def on_gpu(self) -> bool:
        """Whether the pose model runs on a GPU (an ORT GPU provider, TensorRT, or a CUDA torch device)."""
        backend = self.estimator.backend
        providers = getattr(backend, "providers", None)
        if providers:
            return any(mark in p for p in providers for mark in GPU_PROVIDER_MARKS)
        return self.config.backend == "tensorrt" or str(getattr(backend, "device", "")).startswith("cuda")

    def run(self, count: int) -> list[dict]:
        """``count`` calls; per call the pipeline's stage seconds, ``end_to_end`` seconds and persons returned."""
        samples = []
        for _ in range(count):
            t0 = time.perf_counter()
            poses = self.estimator(self.frame, self.boxes)
            elapsed = time.perf_counter() - t0
            samples.append({**poses.meta["seconds"], "end_to_end": elapsed, "persons": len(poses)})
        return samples

    def memory(self) -> dict:
        """Peak RSS (MiB) of this process and, on a GPU, the GPU memory it holds (MiB, nvidia-smi)."""
        from edgepose.bench.environment import gpu_memory_used_mib

        gpu = gpu_memory_used_mib(os.getpid()) if self.on_gpu() else None
        return {"peak_rss_mib": peak_rss_mib(), "gpu_memory_mib": gpu}

    def close(self) -> None:
        """Close the estimator and the detector opened here."""
        estimator = getattr(self, "estimator", None)
        if estimator is not None:
            estimator.close()
        if self._detector is not None:
            self._detector.close()
            self._detector = None
