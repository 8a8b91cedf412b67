"""Per-stage runtime cost of the PoseEstimator: crop, inference and decode per person, for 1/4/16 persons a frame.

    python -m benchmarks.bench_runtime                    # the stand-in 0.3-GFLOP 256x192 model, a real COCO frame
    python -m benchmarks.bench_runtime --model pose.onnx  # any carded model
    python -m benchmarks.bench_runtime --arch lite_hrnet_18 --out benchmarks/results/runtime_core_lite_hrnet_18.json

Writes benchmarks/results/runtime_core.json (with the machine) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import bench_model
from benchmarks.plain_loop import plain_topdown
from edgepose.bench.environment import environment
from edgepose.io import atomic_write_text, read_image
from edgepose.pipeline import PoseEstimator

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_FRAME = ROOT / "tests" / "data" / "coco_val_samples" / "000000196141.jpg"


STAGES = ("crop", "infer", "decode", "end_to_end", "plain_loop")


def plain_session(model: str, threads: int | None):
    """A default ONNX Runtime session, as a user would open one."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def spread_boxes(n: int, frame_shape, rng) -> np.ndarray:
    """``n`` person-shaped boxes at random places in the frame."""
    height, width = frame_shape[:2]
    h = rng.uniform(0.3, 0.9, n) * height
    w = h * rng.uniform(0.3, 0.6, n)
    x1, y1 = rng.uniform(0, width - w), rng.uniform(0, height - h)
    return np.stack([x1, y1, x1 + w, y1 + h], 1)


def stats(samples: list[float]) -> dict:
    """Median / p90 / p99 / max in milliseconds."""
    ms = np.asarray(samples) * 1e3
    return {"median": float(np.median(ms)), "p90": float(np.percentile(ms, 90)),
            "p99": float(np.percentile(ms, 99)), "max": float(ms.max())}


def bench(estimator: PoseEstimator, frame, boxes, iters: int, warmup: int, times: dict[str, list[float]],
          plain_session) -> None:
    """Time crop, inference, decode, end to end and the plain per-person loop on the same frame and boxes;
    append samples (seconds) to ``times``.

    Each measured thing runs as its own block of iterations: two ONNX Runtime sessions called alternately would
    slow each other down (a session's worker threads keep spinning for a moment after each run).
    """

    def stages() -> tuple[float, float, float]:
        t0 = time.perf_counter()
        batch, affine = estimator.crop(frame, boxes)
        t1 = time.perf_counter()
        outputs = estimator.infer(batch)
        t2 = time.perf_counter()
        estimator.decode(outputs, affine)
        return t1 - t0, t2 - t1, time.perf_counter() - t2

    def timed(call) -> float:
        t0 = time.perf_counter()
        call()
        return time.perf_counter() - t0

    blocks = [
        (("crop", "infer", "decode"), stages),
        (("end_to_end",), lambda: (timed(lambda: estimator(frame, boxes)),)),
        (("plain_loop",), lambda: (timed(lambda: plain_topdown(frame, boxes, plain_session, estimator.card)),)),
    ]
    for keys, run in blocks:
        for i in range(warmup + iters):
            sample = run()
            if i >= warmup:
                for key, dt in zip(keys, sample, strict=True):
                    times[key].append(dt)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="carded ONNX pose model (default: the stand-in network)")
    parser.add_argument("--arch", help="instead: export this compress.models network (random weights), e.g. "
                                       "lite_hrnet_18 (needs torch)")
    parser.add_argument("--frame", default=str(DEFAULT_FRAME), help="image to crop from")
    parser.add_argument("--persons", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds over the person counts")
    parser.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads (default: ORT's choice)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "runtime_core.json"))
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        if args.arch:
            model = bench_model.export_zoo_model(args.arch, os.path.join(tmp, f"{args.arch}.onnx"))
        else:
            model = args.model or bench_model.build(os.path.join(tmp, "bench.onnx"))
        options = {"threads": args.threads} if args.threads else {}
        frame = read_image(args.frame) if os.path.isfile(args.frame) else np.random.default_rng(0).integers(
            0, 256, (480, 640, 3), dtype=np.uint8)
        rows = []
        samples = {n: {k: [] for k in STAGES} for n in args.persons}
        boxes = {n: spread_boxes(n, frame.shape, np.random.default_rng(n)) for n in args.persons}
        with PoseEstimator(model, backend_options=options) as estimator:
            plain = plain_session(model, args.threads)
            for _ in range(args.repeats):  # interleaved, so slow drift of a shared machine hits every size alike
                for n in args.persons:
                    bench(estimator, frame, boxes[n], args.iters, args.warmup, samples[n], plain)
        for n in args.persons:
            result = {k: stats(v) for k, v in samples[n].items()}
            per_person = {k: v["median"] / n for k, v in result.items()}
            crop_decode = per_person["crop"] + per_person["decode"]
            rows.append({"persons": n, "stages_ms": result, "per_person_ms": per_person,
                         "crop_decode_per_person_ms": crop_decode,
                         "crop_decode_over_infer": crop_decode / per_person["infer"],
                         "plain_loop_over_edgepose": result["plain_loop"]["median"] / result["end_to_end"]["median"]})
    command = " ".join(["python -m benchmarks.bench_runtime", *(argv or sys.argv[1:])])
    record = {"benchmark": "runtime_core", "command": command,
              "model": args.model or (f"{args.arch} (random weights)" if args.arch else
                                      f"stand-in {bench_model.CARD.name} ({bench_model.gflops():.2f} GFLOPs)"),
              "frame": os.path.basename(args.frame), "frame_shape": list(frame.shape), "iters": args.iters,
              "repeats": args.repeats,
              "environment": environment(args.threads, ["CPUExecutionProvider"]), "rows": rows}
    atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")
    print(f"model: {record['model']}; frame {frame.shape[1]}x{frame.shape[0]}; {record['environment']['cpu']}")
    print("| persons | crop ms/person | infer ms/person | decode ms/person | crop+decode ms/person |"
          " (crop+decode)/infer | end-to-end ms/frame (p90) | plain loop ms/frame | plain/edgepose |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        p = r["per_person_ms"]
        e2e = r["stages_ms"]["end_to_end"]
        print(f"| {r['persons']} | {p['crop']:.3f} | {p['infer']:.2f} | {p['decode']:.3f} | "
              f"{r['crop_decode_per_person_ms']:.3f} | {100 * r['crop_decode_over_infer']:.1f}% | "
              f"{e2e['median']:.2f} ({e2e['p90']:.2f}) | {r['stages_ms']['plain_loop']['median']:.2f} | "
              f"{r['plain_loop_over_edgepose']:.2f}x |")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
