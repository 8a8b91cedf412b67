"""Per-stage runtime cost of the PoseEstimator: crop, inference and decode per person, for 1/4/16 persons a frame,
and its overhead over bare inference at 1 and 8 persons.

    python -m benchmarks.bench_runtime                    # the stand-in 0.3-GFLOP 256x192 model, a real COCO frame
    python -m benchmarks.bench_runtime --model pose.onnx  # any carded model
    python -m benchmarks.bench_runtime --arch lite_hrnet_18 --out benchmarks/results/runtime_core_lite_hrnet_18.json

Overhead (``bare_vs_pose``): the full pose stage ``estimator(frame, boxes)`` (crop, inference, decode, mapping back,
bookkeeping) against bare ``session.run`` calls on the same preprocessed batch (one call per chunk of the model's
fixed batch, if it has one) of a plain ONNX Runtime session of the same model with the same thread count. The two
alternate block by block within each round (the first one alternating between rounds); per round the medians give
``pose / bare``; the record keeps every round and the median over rounds.

Writes benchmarks/results/runtime_core.json (with the machine) and prints Markdown tables.
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


def bare_runner(session, batch: np.ndarray):
    """A call running ``session`` on the preprocessed (N,3,H,W) ``batch`` as a bare loop would: whole, or one
    ``session.run`` per chunk of the model's fixed batch (the last chunk zero-padded, prepared here, untimed)."""
    spec = session.get_inputs()[0]
    fixed = spec.shape[0] if isinstance(spec.shape[0], int) and spec.shape[0] > 0 else None
    step = fixed or len(batch)
    chunks = []
    for start in range(0, len(batch), step):
        part = batch[start:start + step]
        if len(part) < step:
            part = np.concatenate([part, np.zeros((step - len(part), *part.shape[1:]), part.dtype)])
        chunks.append({spec.name: np.ascontiguousarray(part)})
    return lambda: [session.run(None, feeds) for feeds in chunks]


def block_median(call, iters: int, warmup: int) -> float:
    """Median seconds of ``iters`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(iters):
        t0 = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t0)
    return float(np.median(samples))


def bare_vs_pose(estimator: PoseEstimator, session, frame, boxes: np.ndarray, rounds: int, iters: int,
                 warmup: int) -> dict:
    """The pose stage against bare inference on the same persons, alternating block by block for ``rounds``."""
    batch = np.array(estimator.crop(frame, boxes)[0])  # a copy: the estimator reuses its buffer
    calls = {"bare": bare_runner(session, batch), "pose": lambda: estimator(frame, boxes)}
    per_round: dict[str, list[float]] = {"bare": [], "pose": []}
    for r in range(rounds):
        for name in (("bare", "pose") if r % 2 == 0 else ("pose", "bare")):
            per_round[name].append(block_median(calls[name], iters, warmup))
    bare, pose = np.asarray(per_round["bare"]), np.asarray(per_round["pose"])
    n = len(boxes)
    ratio = float(np.median(pose / bare))
    return {"persons": n, "batch_mode": estimator.backend.batch_mode,
            "bare_ms": float(np.median(bare)) * 1e3, "pose_ms": float(np.median(pose)) * 1e3,
            "overhead_ratio": ratio - 1.0, "overhead_ms": float(np.median(pose - bare)) * 1e3,
            "overhead_per_person_ms": float(np.median(pose - bare)) * 1e3 / n,
            "rounds_bare_ms": (bare * 1e3).tolist(), "rounds_pose_ms": (pose * 1e3).tolist(),
            "rounds_overhead_ratio": (pose / bare - 1.0).tolist()}


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
    parser.add_argument("--compare", type=int, nargs="*", default=[1, 8],
                        help="person counts for the overhead over bare inference (none: skip it)")
    parser.add_argument("--compare-rounds", type=int, default=9, help="alternating rounds of that comparison")
    parser.add_argument("--compare-iters", type=int, default=30, help="calls per block of that comparison")
    parser.add_argument("--note", default="", help="recorded as is, e.g. that the machine was shared")
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
            overhead = [bare_vs_pose(estimator, plain, frame, spread_boxes(n, frame.shape, np.random.default_rng(n)),
                                     args.compare_rounds, args.compare_iters, args.warmup) for n in args.compare]
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
              "repeats": args.repeats, "note": args.note,
              "environment": environment(args.threads, ["CPUExecutionProvider"]), "rows": rows,
              "bare_vs_pose": overhead}
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
    if overhead:
        print("\n| persons | bare session.run ms | pose stage ms | overhead | overhead ms/person |")
        print("|---|---|---|---|---|")
        for o in overhead:
            print(f"| {o['persons']} | {o['bare_ms']:.2f} | {o['pose_ms']:.2f} | {100 * o['overhead_ratio']:.1f}% | "
                  f"{o['overhead_per_person_ms']:.3f} |")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
