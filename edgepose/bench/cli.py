"""``edgepose bench``: per-stage latency of pose models over persons, threads and providers, in one interleaved run.

For the project's built-in stand-in model (no model file of yours) run ``python -m benchmarks.bench_runtime``.
"""

from __future__ import annotations

import argparse
import sys

HELP = ("time the PoseEstimator per stage over models, persons, threads and providers; writes bench.jsonl, "
        "bench.csv, bench.md and plots")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``edgepose bench``."""
    parser.add_argument("--model", action="append", required=True, metavar="MODEL",  # one backend/precision each
                        help="pose model (.onnx / .engine / .ts / .pt2); repeat for several: fp32.onnx, int8.onnx, ...")
    parser.add_argument("--card", help="model card (YAML/JSON) for models without an embedded one")
    parser.add_argument("--detector", help="person detector (YOLOX ONNX); it runs on every frame and is timed")
    parser.add_argument("--image", help="frame to run on (default: a real COCO sample: tests/data in a checkout, "
                                        "else the packaged one)")
    parser.add_argument("--persons", default="1,4,16",
                        help="persons per frame, comma separated; 'det' = as many as the detector finds "
                             "(default: 1,4,16; counts replicate the detector's boxes, or seeded boxes without one)")
    parser.add_argument("--threads", default="default",
                        help="ONNX Runtime intra-op thread counts, comma separated ('default' = ORT's choice)")
    parser.add_argument("--providers", default="default",
                        help="ONNX Runtime execution providers, comma separated; chain with '+' "
                             "(e.g. CUDAExecutionProvider+CPUExecutionProvider); 'default' = edgepose's choice")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls per configuration first (default 5)")
    parser.add_argument("--iters", type=int, default=50, help="timed calls per configuration (default 50)")
    parser.add_argument("--rounds", type=int, default=5, help="round-robin rounds the iterations are split into")
    parser.add_argument("--isolate", action="store_true",
                        help="each configuration in its own process: peak RSS / GPU memory per configuration")
    parser.add_argument("--ap", help="JSON model -> AP (or -> 'edgepose eval --json' summary): Pareto plot")
    parser.add_argument("--no-plots", action="store_true", help="skip the matplotlib plots")
    parser.add_argument("--out", default="edgepose_bench", help="output folder (default: edgepose_bench)")


def parse_list(text: str, what: str, kind) -> list:
    """Comma-separated values; 'default' -> None; ``kind`` converts the rest (InputError naming ``what``)."""
    from edgepose.errors import InputError

    values = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        if item == "default":
            values.append(None)
            continue
        try:
            values.append(kind(item))
        except ValueError:
            raise InputError(f"--{what}: cannot read {item!r} (expected {kind.__name__} values, comma separated)") \
                from None
    if not values:
        raise InputError(f"--{what}: no values in {text!r}")
    return values


def _persons(item: str) -> int | str:
    from edgepose.bench.measure import DETECTOR_PERSONS

    if item == DETECTOR_PERSONS:
        return item
    count = int(item)
    if count < 1:
        raise ValueError(item)
    return count


def _threads(item: str) -> int:
    count = int(item)
    if count < 1:
        raise ValueError(item)
    return count


def run(args: argparse.Namespace) -> int:
    """Run the sweep and write the reports; prints the Markdown table."""
    from edgepose.bench.environment import environment
    from edgepose.bench.frames import load_frame
    from edgepose.bench.plots import write_plots
    from edgepose.bench.report import attach_ap, load_ap, to_markdown, write_reports
    from edgepose.bench.runner import BenchSettings, configurations, run_benchmark

    persons = parse_list(args.persons, "persons", _persons)
    threads = parse_list(args.threads, "threads", _threads)
    providers = parse_list(args.providers, "providers", str)
    settings = BenchSettings(warmup=args.warmup, iters=args.iters, rounds=args.rounds, isolate=args.isolate)
    ap = load_ap(args.ap) if args.ap else None
    configs = configurations(args.model, persons, threads, providers, card=args.card, detector=args.detector)
    frame, source = load_frame(args.image)

    def say(message: str) -> None:
        print(f"edgepose bench: {message}", file=sys.stderr)

    say(f"{len(configs)} configurations on {source} ({frame.shape[1]}x{frame.shape[0]})")
    result = run_benchmark(configs, frame, settings, progress=say)
    if ap is not None:
        attach_ap(result.rows, ap)
        missing = sorted({r["model"] for r in result.rows if r["ap"] is None})
        if missing:
            say(f"warning: no AP in {args.ap} for {missing}")
    for row in result.rows:
        row["frame"] = source
    env = environment(["default" if t is None else t for t in threads],
                      ["default" if p is None else p for p in providers])
    paths = write_reports(result.rows, args.out, env)
    if not args.no_plots:
        plots, skipped = write_plots(result.rows, args.out)
        if skipped:
            say(skipped)
        paths.update({p: p for p in plots})
    print(to_markdown(result.rows, env))
    say(f"wrote {', '.join(sorted(paths.values()))}")
    return 0
