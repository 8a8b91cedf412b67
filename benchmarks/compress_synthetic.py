"""Compression table on the synthetic set: FP32, FP16, INT8 PTQ (MinMax / Entropy / Percentile), INT8 QAT, pruned
30% and 50% FLOPs (fine-tuned with distillation from the unpruned model) and pruned-50% + INT8. INT8 rows are
TensorRT's format (symmetric int8 activations); the ``_u8`` rows use uint8 activations, ONNX Runtime's fast path on
x86 CPUs, with the deconvolution head rewritten as sub-pixel Convs so it runs in INT8 too (``_first_conv``: the
first conv quantized as well).

    python -m benchmarks.compress_synthetic [--base runs/synthetic_teacher_simple_baseline_18/last.pth]

For every variant: COCO AP on the synthetic val split (ground-truth boxes, the runtime's own pipeline), params,
GFLOPs, ONNX file size, ONNX Runtime CPU latency per person (batch 1 and batch 8; all variants timed round-robin in
one run, medians), and parity on tests/data/coco_val_samples: the mean distance in pixels between each
variant's keypoints and FP32's on the real COCO persons. Writes benchmarks/results/compression.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path

import numpy as np

from edgepose.bench.environment import environment
from edgepose.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]

COCO = ROOT / "tests" / "data" / "coco_val_samples"


def latency_table(paths: dict[str, str], crops: np.ndarray, rounds: int) -> dict[str, dict]:
    """Median ms per person at batch 1 and batch 8, every variant timed in turn within each round (the
    quickstart's timer, ONNX Runtime's default threads)."""
    from quickstart.bench import latency_table as timed
    from quickstart.config import BenchStage

    table = timed(paths, crops, BenchStage(rounds=rounds, warmup=3, batches=[1, 8], threads=None), progress=False)
    return {k: {"cpu_ms": v["ms_per_person_b1"], "cpu_ms_b8": v["ms_per_person_b8"]} for k, v in table.items()}


def coco_parity(paths: dict[str, str]) -> dict[str, float]:
    """Mean keypoint distance (px) to FP32 on the real COCO persons, ground-truth boxes."""
    from edgepose.coco.evaluate import predict_with_gt_boxes

    ann, images = COCO / "test_coco.json", COCO
    ref = predict_with_gt_boxes(paths["fp32"], ann, images)
    out = {}
    for k, p in paths.items():
        got = predict_with_gt_boxes(p, ann, images)
        d = [np.linalg.norm(np.reshape(a["keypoints"], (-1, 3))[:, :2] - np.reshape(b["keypoints"], (-1, 3))[:, :2],
                            axis=1).mean() for a, b in zip(ref, got, strict=True)]
        out[k] = float(np.mean(d))
    return out


def finetune_config(base: str, out_dir: str, epochs: int, lr: float):
    """The base run's training config, set to fine-tune from ``base`` with distillation from it."""
    from compress.checkpoint import read_checkpoint
    from compress.config import from_dict
    from compress.train.config import TrainConfig
    from compress.train.distill import DistillConfig

    config = from_dict(TrainConfig, read_checkpoint(base)["config"], "checkpoint config")
    config = copy.deepcopy(config)
    config.model.init, config.epochs, config.out_dir = base, epochs, out_dir
    config.optim.lr, config.optim.warmup_iters = lr, 20
    config.distill = DistillConfig(teacher=base, alpha=0.5)
    return config


def main(argv: list[str] | None = None) -> int:
    """Build every variant (skipping those already built), measure, write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="runs/synthetic_teacher_simple_baseline_18/last.pth")
    parser.add_argument("--work", default="runs/compression")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "compression.json"))
    parser.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs for QAT and pruning")
    parser.add_argument("--calib", type=int, default=64, help="calibration crops for INT8 PTQ")
    parser.add_argument("--rounds", type=int, default=40, help="latency rounds")
    parser.add_argument("--prune", default="30,50", help="FLOPs shares to prune, percent (the last gets INT8 too)")
    args = parser.parse_args(argv)

    from compress.checkpoint import load_model, read_checkpoint
    from compress.models.complexity import count_flops, count_params
    from compress.prune.job import FinetuneSettings, PruneJob, run_job
    from compress.prune.structured import PruneSettings
    from compress.train.loop import train
    from deploy.export import export_checkpoint
    from deploy.quantize.calibration import CalibrationImages
    from deploy.quantize.ptq import conv_weight_qdq_coverage, convert_fp16, quantize_int8
    from edgepose.coco.evaluate import evaluate_model

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data = read_checkpoint(args.base)["config"]["data"]
    train_ann, train_images = data["train_ann"], data["train_images"]
    val_ann, val_images = data["val_ann"], data["val_images"]
    paths: dict[str, str] = {}
    models: dict[str, str] = {}  # variant -> checkpoint (params / FLOPs)
    notes: dict[str, dict] = {}

    def step(name: str, path: Path, build) -> None:
        if not path.exists():
            print(f"[{name}] building {path}", flush=True)
            build(str(path))
        paths[name] = str(path)

    step("fp32", work / "fp32.onnx", lambda p: export_checkpoint(args.base, p))
    models["fp32"] = args.base
    step("fp16", work / "fp16.onnx", lambda p: convert_fp16(paths["fp32"], p))
    models["fp16"] = args.base
    for method in ("minmax", "entropy", "percentile"):
        def ptq(p, method=method):
            report = quantize_int8(paths["fp32"], p, CalibrationImages(paths["fp32"], train_ann, train_images,
                                                                         num=args.calib), method=method)
            notes[f"int8_ptq_{method}"] = {"excluded": report.excluded, "quantized_convs": report.quantized_convs}
        step(f"int8_ptq_{method}", work / f"int8_ptq_{method}.onnx", ptq)
        models[f"int8_ptq_{method}"] = args.base
    def u8(name: str, source: str, **options):
        """U8S8 (ONNX Runtime's x86 path; deconvolutions rewritten as sub-pixel Convs by default), MinMax unless
        ``options`` say otherwise."""
        def build(p):
            report = quantize_int8(paths[source], p, CalibrationImages(paths[source], train_ann, train_images,
                                                                       num=args.calib), activations="uint8", **options)
            notes[name] = {"excluded": report.excluded, "rewritten_deconvs": report.rewritten_deconvs}
        step(name, work / f"{name}.onnx", build)
        models[name] = models[source]

    u8("int8_ptq_minmax_u8", "fp32")
    u8("int8_ptq_entropy_u8", "fp32", method="entropy")
    u8("int8_ptq_percentile_u8", "fp32", method="percentile")
    u8("int8_ptq_minmax_u8_first_conv", "fp32", exclude_first_conv=False)

    qat_dir = work / "qat"
    if not (qat_dir / "last.pth").exists():
        config = finetune_config(args.base, str(qat_dir), args.epochs, 2e-4)
        config.qat = True
        train(config, resume="auto")
    step("int8_qat", work / "int8_qat.onnx", lambda p: export_checkpoint(qat_dir / "last.pth", p))
    models["int8_qat"] = str(qat_dir / "last.pth")

    shares = [int(v) for v in args.prune.split(",")]
    for share in shares:
        out_dir = work / f"pruned{share}"
        if not (out_dir / "pruned.pth").exists():
            job = PruneJob(args.base, str(out_dir), PruneSettings(target_flops_ratio=share / 100, global_pruning=False),
                           FinetuneSettings(epochs=args.epochs, lr=1e-3, distill_alpha=0.5))
            run_job(job)
        step(f"pruned{share}", work / f"pruned{share}.onnx",
             lambda p, d=out_dir: export_checkpoint(d / "pruned.pth", p))
        models[f"pruned{share}"] = str(out_dir / "pruned.pth")
    top = f"pruned{shares[-1]}"
    step(f"{top}_int8", work / f"{top}_int8.onnx", lambda p: quantize_int8(
        paths[top], p, CalibrationImages(paths[top], train_ann, train_images, num=args.calib)))
    models[f"{top}_int8"] = models[top]
    u8(f"{top}_int8_u8", top)

    print("evaluating", flush=True)
    from quickstart.bench import val_crops

    crops = val_crops(paths["fp32"], val_ann, val_images, 8)
    timing = latency_table(paths, crops, args.rounds)
    parity = coco_parity(paths)
    rows = []
    for name, path in paths.items():
        metrics, _ = evaluate_model(path, val_ann, val_images)
        model, card, _ = load_model(models[name])
        if "int8" in name:  # which convolutions run in INT8, which stayed float (first conv, head)
            quantized, kept_float = conv_weight_qdq_coverage(path)
            notes.setdefault(name, {}).update(quantized_convs=len(quantized), float_convs=kept_float)
        rows.append({"variant": name, "ap": metrics["AP"], "ap50": metrics["AP50"], "params": count_params(model),
                     "gflops": count_flops(model, card.input_size), "size_bytes": os.path.getsize(path),
                     **timing[name], "coco_parity_px": parity[name], **notes.get(name, {})})
    fp32 = next(r for r in rows if r["variant"] == "fp32")
    for r in rows:
        r["speedup_vs_fp32"] = fp32["cpu_ms"] / r["cpu_ms"]
        r["speedup_vs_fp32_b8"] = fp32["cpu_ms_b8"] / r["cpu_ms_b8"]
        r["ap_loss_points"] = 100 * (fp32["ap"] - r["ap"])
    command = " ".join(["python -m benchmarks.compress_synthetic", *(argv if argv is not None else sys.argv[1:])])
    for r in rows:
        r["command"] = command
    record = {"benchmark": "compression", "base": args.base, "rows": rows, "command": command,
              "validation": "synthetic val split, ground-truth boxes; parity: tests/data coco_val_samples vs FP32",
              "latency": f"ONNX Runtime CPU, default threads, median of {args.rounds} round-robin rounds per person",
              "environment": environment(None)}
    atomic_write_text(args.out, json.dumps(record, indent=2, default=str) + "\n")
    keys = ("variant", "ap", "params", "gflops", "size_bytes", "cpu_ms", "cpu_ms_b8", "speedup_vs_fp32",
            "coco_parity_px")
    print(" | ".join(keys))
    for r in rows:
        print(" | ".join(f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k]) for k in keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
