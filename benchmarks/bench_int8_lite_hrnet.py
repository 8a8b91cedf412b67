"""INT8 on Lite-HRNet-18 with ONNX Runtime's CPU provider: which ops to quantize, and where the time goes.

    python -m benchmarks.bench_int8_lite_hrnet [--rounds 15] [--threads 1] [--trained STUDENT.onnx --data DIR]

Lite-HRNet-18 at 256x192 (random weights with real magnitudes: time does not depend on them) is exported with
``deploy.export`` and quantized by ``deploy.quantize.ptq.quantize_int8`` the way the project does for ONNX Runtime on
x86 (uint8 activations, MinMax, first conv and head float; calibrated on the COCO crops of tests/data) in every
``--int8-scope`` variant: "all" ops, "conv" (Convs only), "dense" (group-1 Convs only, depthwise float), per-channel
and per-tensor weights. Latency: every variant runs each batch size once per round, in turn (the quickstart's
``latency_table``), medians of the per-call time over the batch; ratios are FP32's median over the variant's.
Profile: ONNX Runtime's profiler (``SessionOptions.enable_profiling``) over ``--profile-runs`` interleaved runs per
variant and batch, node time summed by op type (ms per run), Convs split into depthwise and dense.
With ``--trained`` (an FP32 ONNX of a trained model, e.g. a quickstart's ``export/student.onnx``) and ``--data`` (its
synthetic dataset: calibration on train, AP on val with ground-truth boxes) each scope is also made from it and its
AP loss against FP32 measured. Writes benchmarks/results/int8_lite_hrnet.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgepose.bench.environment import environment
from edgepose.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
COCO = ROOT / "tests" / "data" / "coco_val_samples"
# name -> quantize_int8 keyword arguments (besides uint8 activations, MinMax, first conv and head float)
VARIANTS = {
    "int8_all": {"scope": "all"},
    "int8_conv": {"scope": "conv"},
    "int8_dense": {"scope": "dense"},
    "int8_dense_per_tensor": {"scope": "dense", "per_channel": False},
}


def export_lite_hrnet(folder: str) -> str:
    """Lite-HRNet-18 at 256x192, realistic random weights, exported with its MMPose card."""
    from compress.models import build_model
    from compress.models.mmpose_cards import mmpose_card
    from compress.models.random_init import realistic_random_weights
    from deploy.export import export_model

    model = realistic_random_weights(build_model("lite_hrnet_18", num_keypoints=17, input_size=(192, 256)))
    return export_model(model, mmpose_card("lite_hrnet_18"), os.path.join(folder, "fp32.onnx"))


def make_variants(fp32: str, calibration, folder: str, prefix: str = "") -> dict[str, dict]:
    """{name: {"path", "quantized_convs", "kept_float"}} of every INT8 variant of ``fp32``."""
    from deploy.quantize.ptq import quantize_int8

    out = {}
    for name, kwargs in VARIANTS.items():
        report = quantize_int8(fp32, os.path.join(folder, f"{prefix}{name}.onnx"), calibration, activations="uint8",
                               **kwargs)
        out[name] = {"path": report.dst, "quantized_convs": report.quantized_convs,
                     "kept_float": len(report.excluded), **kwargs}
    return out


def _session(path: str, threads: int, profile_prefix: str):
    import onnxruntime as ort

    so = ort.SessionOptions()  # as OnnxRuntimeBackend: all graph optimisations, spinning, intra-op threads only
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.enable_profiling, so.profile_file_prefix = True, profile_prefix
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def depthwise_names(path: str) -> tuple[set[str], set[str], dict[str, str]]:
    """(grouped Conv names, other Conv names, tensor -> producing node name) of ``path``'s graph."""
    import onnx

    from deploy.quantize.ptq import depthwise_convs

    graph = onnx.load(path).graph
    grouped = set(depthwise_convs(graph))
    dense = {n.name for n in graph.node if n.op_type == "Conv"} - grouped
    producer = {out: n.name for n in graph.node for out in n.output}
    return grouped, dense, producer


def _conv_kind(event_name: str, grouped: set[str], dense: set[str], producer: dict[str, str]) -> str:
    """"depthwise" or "dense" for a Conv-like kernel event, from the node name ONNX Runtime gave it: the source
    Conv's name with ``_token_N`` (layout transformation) or a tensor name with ``_nchwc`` (NCHWc convs, named by
    their output, maybe an activation fused into them)."""
    name = re.sub(r"(_token_\d+)+$", "", event_name.removesuffix("_kernel_time")).removesuffix("_nchwc")
    for candidate in (name, producer.get(name, "")):
        if candidate in grouped:
            return "depthwise"
        if candidate in dense:
            return "dense"
    # an activation fused into the Conv: its output names the event; the Conv is the activation's input's producer
    stem = re.sub(r"/(activate|relu)/[A-Za-z]+_output_0$", "/conv/Conv", name)
    return "depthwise" if stem in grouped else "dense" if stem in dense else "unclassified"


def profile_by_op(paths: dict[str, str], crops: np.ndarray, batches: list[int], threads: int, runs: int,
                  warmup: int, workdir: str) -> dict[str, dict]:
    """{variant: {"bN": {"ms_per_run", "ops": {op type: ms per run}, "conv_depthwise_ms", "conv_dense_ms"}}}: all
    (variant, batch) sessions profiled together, each run once per round, in turn; mean node time per run."""
    sessions = {(k, n): _session(p, threads, os.path.join(workdir, f"prof_{k}_b{n}")) for k, p in paths.items()
                for n in batches}
    name = next(iter(sessions.values())).get_inputs()[0].name
    for _ in range(warmup):
        for (_, n), s in sessions.items():
            s.run(None, {name: crops[:n]})
    for _ in range(runs):
        for (_, n), s in sessions.items():
            s.run(None, {name: crops[:n]})
    out: dict[str, dict] = {k: {} for k in paths}
    for (k, n), s in sessions.items():
        grouped, dense, producer = depthwise_names(paths[k])
        with open(s.end_profiling(), encoding="utf-8") as fh:
            events = json.load(fh)
        model_runs = [e for e in events if e.get("name") == "model_run"][warmup:]
        start = model_runs[0]["ts"]
        ops: dict[str, float] = {}
        kinds = {"depthwise": 0.0, "dense": 0.0, "unclassified": 0.0}
        for e in events:
            if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time") or e["ts"] < start:
                continue
            op = e["args"]["op_name"]
            ops[op] = ops.get(op, 0.0) + e["dur"] / 1e3 / runs
            if "Conv" in op:
                kinds[_conv_kind(e["name"], grouped, dense, producer)] += e["dur"] / 1e3 / runs
        out[k][f"b{n}"] = {"ms_per_run": float(np.median([e["dur"] / 1e3 for e in model_runs])),
                           "node_ms_per_run": sum(ops.values()),
                           "ops": dict(sorted(ops.items(), key=lambda kv: -kv[1])),
                           **{f"conv_{kind}_ms": v for kind, v in kinds.items()}}
    return out


def accuracy(trained: str, data: str, folder: str, calib: int) -> dict[str, dict]:
    """AP (val, ground-truth boxes) of ``trained`` and of each INT8 variant made from it, calibrated on train."""
    from deploy.quantize.calibration import CalibrationImages
    from edgepose.coco.evaluate import evaluate_model

    ann = os.path.join(data, "annotations", "person_keypoints_{}.json")
    calibration = CalibrationImages(trained, ann.format("train"), os.path.join(data, "train"), num=calib)
    made = make_variants(trained, calibration, folder, prefix="trained_")
    out = {}
    for name, path in {"fp32": trained, **{k: v["path"] for k, v in made.items()}}.items():
        metrics, _ = evaluate_model(path, ann.format("val"), os.path.join(data, "val"))
        out[name] = {"ap": metrics["AP"], "ap50": metrics["AP50"]}
    for row in out.values():
        row["ap_loss_points"] = 100 * (out["fp32"]["ap"] - row["ap"])
    return out


def main(argv: list[str] | None = None) -> int:
    """Export, quantize every scope, time, profile, optionally measure AP; write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=15, help="latency rounds (all variants in turn each round)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--profile-runs", type=int, default=5)
    parser.add_argument("--calib", type=int, default=16, help="calibration crops")
    parser.add_argument("--trained", help="FP32 ONNX of a trained model for the AP loss (e.g. quickstart's "
                                          "export/student.onnx)")
    parser.add_argument("--data", help="its synthetic dataset folder (annotations/, train/, val/)")
    parser.add_argument("--note", default="", help="free text stored in the JSON (e.g. 'shared machine')")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "int8_lite_hrnet.json"))
    args = parser.parse_args(argv)
    if bool(args.trained) != bool(args.data):
        parser.error("--trained and --data go together")
    from deploy.quantize.calibration import CalibrationImages
    from quickstart.bench import latency_table
    from quickstart.config import BenchStage

    with tempfile.TemporaryDirectory(prefix="edgepose-int8-lhr-") as folder:
        fp32 = export_lite_hrnet(folder)
        calibration = CalibrationImages(fp32, COCO / "test_coco.json", COCO, num=args.calib)
        made = make_variants(fp32, calibration, folder)
        paths = {"fp32": fp32, **{k: v["path"] for k, v in made.items()}}
        crops = np.concatenate([calibration.item(i) for i in range(len(calibration))])
        crops = np.ascontiguousarray(np.resize(crops, (max(args.batches), *crops.shape[1:])))
        settings = BenchStage(rounds=args.rounds, warmup=args.warmup, batches=list(args.batches), threads=args.threads)
        timing = latency_table(paths, crops, settings, progress=False)
        profile = profile_by_op(paths, crops, list(args.batches), args.threads, args.profile_runs, args.warmup, folder)
        ap = accuracy(args.trained, args.data, folder, args.calib) if args.trained else {}
    rows = {}
    for name in paths:
        row = {**{k: v for k, v in made.get(name, {}).items() if k != "path"}, **timing[name]}
        for n in args.batches:
            row[f"speedup_vs_fp32_b{n}"] = timing["fp32"][f"ms_per_person_b{n}"] / timing[name][f"ms_per_person_b{n}"]
        row["profile"] = profile[name]
        if name in ap:
            row["accuracy_trained"] = ap[name]
        rows[name] = row
    result = {
        "benchmark": "int8_lite_hrnet",
        "command": "python -m benchmarks.bench_int8_lite_hrnet " + " ".join(sys.argv[1:] if argv is None else argv),
        "model": "lite_hrnet_18 256x192, realistic random weights (compress.models.random_init); INT8: "
                 "quantize_int8(activations='uint8', method='minmax'), first conv and head float, calibrated on "
                 f"{len(calibration)} crops of tests/data/coco_val_samples",
        "accuracy_model": (f"{args.trained} on {args.data} (val split, ground-truth boxes), calibrated on "
                           f"{args.calib} train crops") if args.trained else None,
        "latency": f"ONNX Runtime CPU, {args.threads} thread(s), median of {args.rounds} round-robin rounds, "
                   "ms per person; speedup = FP32 median / variant median (same run)",
        "profile": f"ONNX Runtime profiler, mean node time per run over {args.profile_runs} interleaved runs, by op "
                   "type; Conv-like kernels split into depthwise (group > 1) and dense",
        "note": args.note,
        "variants": rows,
        "environment": environment(args.threads, ["CPUExecutionProvider"]),
    }
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    for name, row in rows.items():
        print(f"{name:24s} " + "  ".join(f"b{n} {row[f'ms_per_person_b{n}']:7.2f} ms "
                                          f"x{row[f'speedup_vs_fp32_b{n}']:.2f}" for n in args.batches)
              + (f"  AP loss {row['accuracy_trained']['ap_loss_points']:+.2f}" if "accuracy_trained" in row else ""))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
