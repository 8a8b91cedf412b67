"""Fast Pose Distillation on the synthetic set: teacher, student alone and distilled student, same schedule and seed.

    python benchmarks/distill_synthetic.py             # trains whichever of the three runs is missing, then records

Runs (configs in compress/configs/):
    teacher   synthetic_teacher_simple_baseline_18.yaml  -> runs/synthetic_teacher_simple_baseline_18
    student   synthetic_lite_hrnet_tiny.yaml             -> runs/synthetic_lite_hrnet_tiny
    distilled synthetic_student_distilled.yaml           -> runs/synthetic_student_distilled
Writes benchmarks/results/distillation.json: the final-epoch val AP of each, params, GFLOPs and ONNX Runtime CPU
latency (batch 1, median), with the command and machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_model import export_zoo_model  # noqa: E402
from benchmarks.bench_runtime import environment  # noqa: E402
from compress.config import load_yaml  # noqa: E402
from compress.train_config import TrainConfig  # noqa: E402
from edgepose.io import atomic_write_text  # noqa: E402

CONFIGS = {
    "teacher": "synthetic_teacher_simple_baseline_18.yaml",
    "student": "synthetic_lite_hrnet_tiny.yaml",
    "distilled": "synthetic_student_distilled.yaml",
}


def final_metrics(out_dir: str) -> dict:
    """The last epoch's row of a run's log.csv."""
    with open(os.path.join(out_dir, "log.csv"), encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return {k: float(v) for k, v in rows[-1].items() if v not in ("", None)}


def cpu_latency_ms(name: str, config: TrainConfig, runs: int = 50) -> float:
    """Median ONNX Runtime batch-1 latency of the architecture (weights do not change it)."""
    from edgepose.backends.onnxruntime import OnnxRuntimeBackend

    with tempfile.TemporaryDirectory() as tmp:
        path = export_zoo_model(name, os.path.join(tmp, "m.onnx"), config.model_card())
        with OnnxRuntimeBackend(path) as backend:
            w, h = config.model_card().input_size
            x = np.random.default_rng(0).standard_normal((1, 3, h, w)).astype(np.float32)
            for _ in range(5):
                backend.infer({"input": x})
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                backend.infer({"input": x})
                times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def main(argv: list[str] | None = None) -> int:
    """Train what is missing, then write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "distillation.json"))
    args = parser.parse_args(argv)

    from compress.models.complexity import count_flops, count_params
    from compress.train import build_for, train

    rows = {}
    for role, name in CONFIGS.items():
        config = load_yaml(TrainConfig, ROOT / "compress" / "configs" / name)
        if config.distill is not None:
            config.distill.teacher = os.path.join(load_yaml(TrainConfig, ROOT / "compress" / "configs" /
                                                            CONFIGS["teacher"]).out_dir, "last.pth")
        log = os.path.join(config.out_dir, "log.csv")
        if not os.path.isfile(log) or final_metrics(config.out_dir).get("epoch", 0) < config.epochs:
            train(config, resume=True, progress=True)
        card = config.model_card()
        model = build_for(config, card) if config.distill is None else build_for(
            load_yaml(TrainConfig, ROOT / "compress" / "configs" / CONFIGS["student"]), card)
        metrics = final_metrics(config.out_dir)
        rows[role] = {"config": f"compress/configs/{name}", "model": config.model.name, "ap": metrics["AP"],
                      "ap50": metrics.get("AP50"), "pck": metrics.get("PCK@0.05"), "epochs": int(metrics["epoch"]),
                      "params": count_params(model), "gflops": count_flops(model, card.input_size),
                      "cpu_ms": cpu_latency_ms(config.model.name, config)}
    teacher, student, distilled = rows["teacher"]["ap"], rows["student"]["ap"], rows["distilled"]["ap"]
    record = {
        "benchmark": "distillation",
        "command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
        "teacher_ap": teacher, "student_ap": student, "distilled_ap": distilled,
        "teacher_gflops": rows["teacher"]["gflops"], "student_gflops": rows["student"]["gflops"],
        "distilled_minus_student_ap": distilled - student,
        "gap_closed": (distilled - student) / (teacher - student) if teacher != student else None,
        "flops_ratio": rows["teacher"]["gflops"] / rows["student"]["gflops"],
        "runs": rows, "validation": "ground-truth boxes of the synthetic val split", "environment": environment(None),
    }
    atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k not in ("runs", "environment")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
