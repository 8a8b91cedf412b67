"""ONNX Runtime CPU latency of the edge architectures at 256x192: RTMPose-t/s against Lite-HRNet-18/30.

    python -m benchmarks.bench_architectures [--threads 1] [--rounds 15] [--out benchmarks/results/architectures.json]

Each network is built with random weights (time does not depend on them), exported with ``deploy.export`` (opset 17,
onnxslim, dynamic batch, card embedded) and run by ONNX Runtime's CPU provider with the given threads. In every
round each model runs each batch size once, in turn, so that drifting machine load hits all alike (the quickstart's
``latency_table``); the table gives medians of the per-call time divided by the batch (ms per person), plus params
and GFLOPs at 256x192.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgepose.bench.environment import environment
from edgepose.io import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
ARCHS = ("rtmpose_t", "rtmpose_s", "lite_hrnet_18", "lite_hrnet_30")


def export(arch: str, folder: str) -> tuple[str, dict]:
    """The ONNX of ``arch`` at 256x192 and its params / GFLOPs."""
    from compress.models import build_model
    from compress.models.complexity import count_flops, count_params
    from compress.models.mmpose_cards import mmpose_card
    from deploy.export import export_model

    model = build_model(arch, num_keypoints=17, input_size=(192, 256)).eval()
    path = export_model(model, mmpose_card(arch), os.path.join(folder, f"{arch}.onnx"))
    return path, {"params": count_params(model), "gflops": count_flops(model, (192, 256))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "architectures.json"))
    args = parser.parse_args(argv)
    from quickstart.bench import latency_table
    from quickstart.config import BenchStage

    settings = BenchStage(rounds=args.rounds, warmup=args.warmup, batches=list(args.batches), threads=args.threads)
    crops = np.random.default_rng(0).normal(0, 1, (max(args.batches), 3, 256, 192)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        made = {arch: export(arch, tmp) for arch in ARCHS}
        timing = latency_table({arch: path for arch, (path, _) in made.items()}, crops, settings, progress=False)
    rows = [{"arch": arch, **made[arch][1], **timing[arch]} for arch in ARCHS]
    record = {"benchmark": "architectures", "command": " ".join(["python -m benchmarks.bench_architectures",
                                                                   *(argv if argv is not None else sys.argv[1:])]),
              "input": "256x192", "threads": args.threads, "rounds": args.rounds, "rows": rows,
              "environment": environment([args.threads], ["CPUExecutionProvider"])}
    atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")
    print("| arch | params (M) | GFLOPs | " + " | ".join(f"ms/person b{n}" for n in args.batches) + " |")
    for r in rows:
        print(f"| {r['arch']} | {r['params'] / 1e6:.2f} | {r['gflops']:.3f} | "
              + " | ".join(f"{r[f'ms_per_person_b{n}']:.2f}" for n in args.batches) + " |")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
