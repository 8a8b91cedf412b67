"""What the batch rewrite buys: PoseEstimator latency per frame on models exported with a fixed batch of 1, rewrite on
(all persons in one call) against off (one call per person), at 1, 4 and 8 persons.

    python -m benchmarks.bench_batch_rewrite [--rounds 7] [--iters 3] [--threads 1 0] [--persons 1 4 8]
                                             [--out benchmarks/results/batch_rewrite.json]

Models: SimpleBaseline-ResNet18 at 256x192 (random weights: time does not depend on them) exported by
``torch.onnx`` with static shapes, batch 1, no onnxslim, to a temp folder; and the packaged BlazePose lite (a
third-party tf2onnx export with batch 1 and Resize-to-sizes). Lite-HRNet-18 is exported the same way, plain and
through onnxslim, for the rewrite's verdict only (not timed). ``--threads 0`` means ONNX Runtime's default. Every
configuration runs one untimed and ``--iters`` timed frames per round, rewrite on and off side by side for each model,
threads and persons (which of the two goes first alternates by round); the table gives medians over all rounds.
The rewrite cache is a temp folder: load times are for the first (rewrite + probe) and second (cache) load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edgepose.assets import DEFAULT_POSE_MODEL
from edgepose.bench.environment import environment
from edgepose.bench.stats import summarize
from edgepose.card import ModelCard
from edgepose.io import atomic_write_text
from edgepose.pipeline import PoseEstimator

ROOT = Path(__file__).resolve().parents[1]
FRAME = ROOT / "edgepose" / "assets" / "sample" / "000000000785.jpg"
HEATMAP_CARD = ModelCard(input_size=(192, 256), mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375),
                         color="rgb", codec="msra", heatmap_size=(48, 64), decode="shift")


def export_fixed(arch: str, folder: str, slim: bool = False) -> str:
    """``arch`` at 256x192 exported with a fixed batch of 1 (torch.onnx, static shapes; onnxslim when ``slim``)."""
    import torch

    from compress.models import build_model
    from deploy.export import export_model

    torch.manual_seed(0)
    model = build_model(arch, num_keypoints=17, input_size=(192, 256), head="heatmap").eval()
    return export_model(model, HEATMAP_CARD, os.path.join(folder, f"{arch}_b1{'_slim' if slim else ''}.onnx"),
                        dynamic_batch=False, slim=slim)


def boxes(n: int, frame_shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """``n`` seeded person-shaped boxes (xyxy) inside the frame."""
    rng = np.random.default_rng(seed)
    h, w = frame_shape[:2]
    bw, bh = rng.uniform(0.2, 0.4, n) * w, rng.uniform(0.4, 0.8, n) * h
    x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
    return np.stack([x0, y0, x0 + bw, y0 + bh], axis=1)


def load_times(path: str, threads: int | None, cache: str) -> dict:
    """Seconds to open a PoseEstimator: rewrite off, first load with the rewrite (into the empty folder ``cache``),
    second load (from it); one each."""
    os.environ["EDGEPOSE_CACHE_DIR"] = cache
    options = {} if threads is None else {"threads": threads}
    out = {}
    for name, extra in (("off", {"batch_rewrite": False}), ("on_first", {}), ("on_cached", {})):
        start = time.perf_counter()
        with PoseEstimator(path, backend_options={**options, **extra}) as est:
            out[f"{name}_s"] = time.perf_counter() - start
            out[f"{name}_note"] = est.backend.batch_note
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--iters", type=int, default=3, help="frames per configuration per round")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 0], help="ORT intra-op threads; 0 = default")
    parser.add_argument("--persons", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "batch_rewrite.json"))
    args = parser.parse_args(argv)
    frame = cv2.imread(str(FRAME))
    threads = [t or None for t in args.threads]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["EDGEPOSE_CACHE_DIR"] = os.path.join(tmp, "cache_export")  # never the user's cache
        models = {"simple_baseline_18_b1": export_fixed("simple_baseline_18", tmp),
                  "blazepose_lite_packaged": str(DEFAULT_POSE_MODEL)}
        loads = {name: load_times(path, threads[0], os.path.join(tmp, f"cache_{name}"))
                 for name, path in models.items()}
        lite_note = {}
        for slim in (False, True):  # onnxslim folds the shape arithmetic into constants: the batch of 1 is baked in
            lite = export_fixed("lite_hrnet_18", tmp, slim)
            os.environ["EDGEPOSE_CACHE_DIR"] = os.path.join(tmp, f"cache_lite_{slim}")
            with PoseEstimator(lite) as est:
                lite_note["onnxslim" if slim else "plain"] = {"batch_mode": est.backend.batch_mode,
                                                              "batch_note": est.backend.batch_note}
        estimators = {}
        for name, path in models.items():
            for t in threads:
                for rewrite in (True, False):
                    options = {"batch_rewrite": rewrite, **({} if t is None else {"threads": t})}
                    estimators[(name, t, rewrite)] = PoseEstimator(path, backend_options=options)
        samples: dict[tuple, list[float]] = {(*key, n): [] for key in estimators for n in args.persons}
        modes = {}
        for key, est in estimators.items():  # warm-up: one frame of every size, untimed
            for n in args.persons:
                modes[(*key, n)] = est(frame, boxes(n, frame.shape)).meta["batch_mode"]
        for round_ in range(args.rounds):
            order = (True, False) if round_ % 2 == 0 else (False, True)  # neither always runs first after a switch
            for name in models:
                for t in threads:
                    for n in args.persons:
                        b = boxes(n, frame.shape)
                        for rewrite in order:
                            est = estimators[(name, t, rewrite)]
                            est(frame, b)  # untimed: the session that ran before may still spin its threads
                            for _ in range(args.iters):
                                start = time.perf_counter()
                                est(frame, b)
                                samples[(name, t, rewrite, n)].append(time.perf_counter() - start)
        for est in estimators.values():
            est.close()
    rows = []
    for (name, t, rewrite, n), values in samples.items():
        rows.append({"model": name, "threads": "default" if t is None else t, "rewrite": rewrite, "persons": n,
                     "batch_mode": modes[(name, t, rewrite, n)], **summarize(values),
                     "samples_ms": [round(v * 1e3, 3) for v in values]})
    ratios = []
    for r in rows:
        if r["rewrite"]:
            off = next(o for o in rows if not o["rewrite"] and (o["model"], o["threads"], o["persons"])
                       == (r["model"], r["threads"], r["persons"]))
            ratios.append({"model": r["model"], "threads": r["threads"], "persons": r["persons"],
                           "off_median_ms": off["median_ms"], "on_median_ms": r["median_ms"],
                           "speedup_off_over_on": off["median_ms"] / r["median_ms"]})
    record = {"benchmark": "batch_rewrite",
              "command": " ".join(["python -m benchmarks.bench_batch_rewrite",
                                   *(argv if argv is not None else sys.argv[1:])]),
              "what": "PoseEstimator(frame, boxes) wall time per frame (crop + inference + decode), CPU provider",
              "frame": str(FRAME.relative_to(ROOT)), "rounds": args.rounds, "iters_per_round": args.iters,
              "machine_shared": "the 2 CPU cores were shared with other jobs while this ran (see load_average): "
                                "compare on/off ratios measured side by side, not absolute times",
              "ratios": ratios, "load_seconds": loads, "lite_hrnet_18_b1_verdict": lite_note, "rows": rows,
              "environment": environment(threads=args.threads, providers=["CPUExecutionProvider"])}
    atomic_write_text(args.out, json.dumps(record, indent=1) + "\n")
    print("| model | threads | persons | off ms | on ms | off/on |")
    for r in ratios:
        print(f"| {r['model']} | {r['threads']} | {r['persons']} | {r['off_median_ms']:.1f} | "
              f"{r['on_median_ms']:.1f} | {r['speedup_off_over_on']:.2f} |")
    print(f"lite_hrnet_18_b1: {lite_note}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
