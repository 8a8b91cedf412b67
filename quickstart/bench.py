"""Latency for ``edgepose quickstart``'s benchmark stage (ONNX Runtime, CPU)."""

from __future__ import annotations

import time

import numpy as np

from quickstart.config import BenchStage


def val_crops(model: str, ann: str, images: str, count: int) -> np.ndarray:
    """(count, 3, H, W) person crops of the val split, preprocessed by the runtime (repeated if there are fewer)."""
    from deploy.quantize.calibration import CalibrationImages

    reader = CalibrationImages(model, ann, images, num=count)
    crops = [reader.item(i) for i in range(len(reader))]
    batch = np.concatenate(crops)
    return np.ascontiguousarray(np.resize(batch, (count, *batch.shape[1:])))


def latency_table(paths: dict[str, str], crops: np.ndarray, settings: BenchStage,
                  progress: bool = True) -> dict[str, dict]:
    """{variant: {"ms_per_person_bN": median, "p90_ms_per_person_bN": ...}}: in every round each variant runs
    each batch size once, in turn, so that drifting machine load hits all variants alike."""
    from compress.progress import bar
    from edgepose.backends.onnxruntime import OnnxRuntimeBackend, OrtOptions

    options = OrtOptions(threads=settings.threads, providers=("CPUExecutionProvider",))
    backends = {k: OnnxRuntimeBackend(p, options) for k, p in paths.items()}
    times: dict[str, dict[int, list[float]]] = {k: {n: [] for n in settings.batches} for k in paths}
    try:
        for b in backends.values():
            for n in settings.batches:
                for _ in range(settings.warmup):
                    b.infer({b.inputs[0].name: crops[:n]})
        for _ in bar(range(settings.rounds), desc="latency", enabled=progress):
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
