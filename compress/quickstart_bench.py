"""Latency and machine description for ``edgepose quickstart``'s benchmark stage (ONNX Runtime, CPU)."""

from __future__ import annotations

import os
import platform
import time

import numpy as np

from compress.quickstart_config import BenchStage


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(threads: int | None = None) -> dict:
    """The machine and software the numbers were measured with (load average included: other work skews them)."""
    import onnxruntime

    info = {"cpu": _cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "onnxruntime": onnxruntime.__version__,
            "ort_threads": threads if threads is not None else "default (one per core)",
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:  # pragma: no cover - the quickstart always has torch
        pass
    if hasattr(os, "getloadavg"):
        info["load_average_1_5_15min"] = [round(v, 2) for v in os.getloadavg()]
    return info


def val_crops(model: str, ann: str, images: str, count: int) -> np.ndarray:
    """(count, 3, H, W) person crops of the val split, preprocessed by the runtime (repeated if there are fewer)."""
    from compress.calibration import CalibrationImages

    reader = CalibrationImages(model, ann, images, num=count)
    crops = [reader.item(i) for i in range(len(reader))]
    batch = np.concatenate(crops)
    return np.ascontiguousarray(np.resize(batch, (count, *batch.shape[1:])))


def latency_table(paths: dict[str, str], crops: np.ndarray, settings: BenchStage,
                  progress: bool = True) -> dict[str, dict]:
    """{variant: {"ms_per_person_bN": median, "p90_ms_per_person_bN": ...}}: in every round each variant runs
    each batch size once, in turn, so that drifting machine load hits all variants alike."""
    from tqdm import tqdm

    from edgepose.backends.onnxruntime import OnnxRuntimeBackend, OrtOptions

    options = OrtOptions(threads=settings.threads, providers=("CPUExecutionProvider",))
    backends = {k: OnnxRuntimeBackend(p, options) for k, p in paths.items()}
    times: dict[str, dict[int, list[float]]] = {k: {n: [] for n in settings.batches} for k in paths}
    try:
        for b in backends.values():
            for n in settings.batches:
                for _ in range(settings.warmup):
                    b.infer({b.inputs[0].name: crops[:n]})
        for _ in tqdm(range(settings.rounds), desc="latency", disable=not progress, leave=False):
            for k, b in backends.items():
                for n in settings.batches:
                    t0 = time.perf_counter()
                    b.infer({b.inputs[0].name: crops[:n]})
                    times[k][n].append((time.perf_counter() - t0) * 1e3 / n)
    finally:
        for b in backends.values():
            b.close()
    out: dict[str, dict] = {}
    for k, per_batch in times.items():
        out[k] = {}
        for n, values in per_batch.items():
            out[k][f"ms_per_person_b{n}"] = float(np.median(values))
            out[k][f"p90_ms_per_person_b{n}"] = float(np.percentile(values, 90))
    return out
