"""Fast Pose Distillation on the synthetic set: teacher, student alone and distilled student, same schedule and seed.

    python -m benchmarks.distill_synthetic             # trains whichever run is missing, then records

Runs (configs in compress/configs/): the teacher (synthetic_teacher_simple_baseline_18.yaml) and, for each
student (Lite-HRNet-tiny, Lite-HRNet-18 and RTMPose-t, a SimCC student of the heatmap teacher), the student
trained alone and distilled (see ``PAIRS``).
Writes benchmarks/results/distillation.json: the final-epoch val AP of each, params, GFLOPs and ONNX Runtime CPU
latency (batch 1, median), with the command and machine.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_model import export_zoo_model
from compress.config import load_yaml
from compress.train.config import TrainConfig
from edgepose.bench.environment import environment
from edgepose.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]

TEACHER = "synthetic_teacher_simple_baseline_18.yaml"
# student name -> (trained alone, distilled): same crop, schedule and seed as the teacher
PAIRS = {
    "lite_hrnet_tiny": ("synthetic_lite_hrnet_tiny.yaml", "synthetic_student_distilled.yaml"),
    "lite_hrnet_18": ("synthetic_student_lite_hrnet_18.yaml", "synthetic_student_lite_hrnet_18_distilled.yaml"),
    "rtmpose_t": ("synthetic_rtmpose_t.yaml", "synthetic_rtmpose_t_distilled.yaml"),
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


def run_row(name: str, teacher_out: str | None) -> dict:
    """Train the config if its run is incomplete, then its final metrics, params, GFLOPs and CPU latency."""
    from compress.models.complexity import count_flops, count_params
    from compress.train.loop import build_for, train

    config = load_yaml(TrainConfig, ROOT / "compress" / "configs" / name)
    if config.distill is not None:
        config.distill.teacher = os.path.join(teacher_out, "last.pth")
    log = os.path.join(config.out_dir, "log.csv")
    if not os.path.isfile(log) or final_metrics(config.out_dir).get("epoch", 0) < config.epochs:
        train(config, resume="auto", progress=True)
    card = config.model_card()
    plain = copy.deepcopy(config)
    plain.distill = None
    model = build_for(plain, card)
    metrics = final_metrics(config.out_dir)
    return {"config": f"compress/configs/{name}", "model": config.model.name, "ap": metrics["AP"],
            "ap50": metrics.get("AP50"), "pck": metrics.get("PCK@0.05"), "epochs": int(metrics["epoch"]),
            "params": count_params(model), "gflops": count_flops(model, card.input_size),
            "cpu_ms": cpu_latency_ms(config.model.name, config)}


def main(argv: list[str] | None = None) -> int:
    """Train what is missing, then write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "distillation.json"))
    parser.add_argument("--pairs", default="lite_hrnet_tiny",
                        help=f"comma-separated students to run, of {sorted(PAIRS)} (each pair is two 10-epoch runs)")
    args = parser.parse_args(argv)
    chosen = [p for p in args.pairs.split(",") if p]
    unknown = [p for p in chosen if p not in PAIRS]
    if unknown or not chosen:
        parser.error(f"--pairs: unknown {unknown}; choose from {sorted(PAIRS)}")

    teacher_out = load_yaml(TrainConfig, ROOT / "compress" / "configs" / TEACHER).out_dir
    teacher = run_row(TEACHER, None)
    pairs = {}
    for student in chosen:
        alone, distilled = PAIRS[student]
        a, d = run_row(alone, teacher_out), run_row(distilled, teacher_out)
        pairs[student] = {
            "student": a, "distilled": d, "student_ap": a["ap"], "distilled_ap": d["ap"],
            "distilled_minus_student_ap": d["ap"] - a["ap"],
            "gap_closed": (d["ap"] - a["ap"]) / (teacher["ap"] - a["ap"]) if teacher["ap"] != a["ap"] else None,
            "flops_ratio": teacher["gflops"] / a["gflops"],
        }
    primary = chosen[0]
    main_pair = pairs[primary]
    record = {
        "benchmark": "distillation",
        "command": " ".join(["python -m benchmarks.distill_synthetic", *(argv if argv is not None else sys.argv[1:])]),
        "primary_student": primary,
        "teacher_ap": teacher["ap"], "student_ap": main_pair["student_ap"], "distilled_ap": main_pair["distilled_ap"],
        "teacher_gflops": teacher["gflops"], "student_gflops": main_pair["student"]["gflops"],
        "distilled_minus_student_ap": main_pair["distilled_minus_student_ap"], "gap_closed": main_pair["gap_closed"],
        "flops_ratio": main_pair["flops_ratio"],
        "teacher": teacher, "pairs": pairs,
        "validation": "ground-truth boxes of the synthetic val split", "environment": environment(None),
    }
    atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k not in ("teacher", "pairs", "environment")}, indent=2))
    for name, pair in pairs.items():
        print(f"{name}: alone {pair['student_ap']:.4f}, distilled {pair['distilled_ap']:.4f}, "
              f"teacher {teacher['ap']:.4f}, gap closed {pair['gap_closed']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
