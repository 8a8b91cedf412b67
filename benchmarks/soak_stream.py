"""Soak: 10,000 frames through ``estimator.stream`` on the CPU with a small model and the real YOLOX detector,
sampling resident memory, OS threads and open files every 250 frames.

    python -m benchmarks.soak_stream [--model runs/student_distilled.onnx] [--frames 10000] [--detect-every 5]

The frames pan slowly across the four real COCO photos of tests/data/coco_val_samples (640x480, 250 frames
per photo, then a cut to the next), so persons enter, move and leave and tracks are born and end. The model
defaults to the distilled Lite-HRNet-tiny of ``benchmarks/distill_synthetic.py`` exported to ONNX (any pose ONNX
with a card works). Writes benchmarks/results/soak_stream.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from edgepose.assets import DEFAULT_DETECTOR
from edgepose.bench.environment import environment
from edgepose.bench.soak import settled_stats, soak_stream
from edgepose.io import atomic_write_text
from edgepose.pipeline import PoseEstimator

ROOT = Path(__file__).resolve().parents[1]

COCO = ROOT / "tests" / "data" / "coco_val_samples"
YOLOX = str(DEFAULT_DETECTOR)


def panning_frames(per_photo: int = 250, size: tuple[int, int] = (640, 480)):
    """Endless 640x480 frames panning across each COCO photo in turn (a cut between photos)."""
    photos = [cv2.imread(str(p)) for p in sorted(COCO.glob("*.jpg"))]
    width, height = size
    i = 0
    while True:
        photo = photos[(i // per_photo) % len(photos)]
        scale = max(width / photo.shape[1], height / photo.shape[0]) * 1.3
        big = cv2.resize(photo, None, fx=scale, fy=scale)
        t = (i % per_photo) / per_photo
        x = int(t * (big.shape[1] - width))
        y = int(t * (big.shape[0] - height) / 2)
        yield np.ascontiguousarray(big[y:y + height, x:x + width])
        i += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "runs" / "student_distilled.onnx"))
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--detect-every", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per model")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "soak_stream.json"))
    args = parser.parse_args()
    if not Path(args.model).is_file():
        sys.exit(f"soak_stream: no model at {args.model}: export one (edgepose export runs/<run>/last.pth --out "
                 f"{args.model}) or pass --model")
    options = {"threads": args.threads}
    with PoseEstimator(args.model, detector=str(YOLOX), backend_options=options) as est:
        list(est.stream(panning_frames(), max_frames=50))  # warm up thread pools and allocators
        start = time.perf_counter()
        report = soak_stream(est, panning_frames(), frames=args.frames, sample_every=250,
                             warmup=min(1000, args.frames // 5), detect_every=args.detect_every,
                             smoothing={"min_cutoff": 1.0, "beta": 0.01})
        seconds = time.perf_counter() - start
    report.update(command="python -m benchmarks.soak_stream " + " ".join(sys.argv[1:]), model=args.model,
                  detect_every=args.detect_every, seconds=round(seconds, 1),
                  mean_fps=round(report["frames"] / seconds, 1), environment=environment(args.threads),
                  after_closing_estimator=settled_stats())
    atomic_write_text(args.out, json.dumps(report, indent=1) + "\n")
    print(f"{report['frames']} frames in {seconds:.0f} s ({report['mean_fps']} FPS), {report['persons']} persons; "
          f"RSS {report['samples'][0]['rss_mib']:.1f} -> {report['samples'][-1]['rss_mib']:.1f} MiB, growth after "
          f"frame {report['warmup']}: {report['rss_growth_after_warmup_mib']:+.2f} MiB "
          f"(slope {report['rss_slope_mib_per_1000_frames']:+.3f} MiB/1000 frames, spread "
          f"{report['rss_spread_after_warmup_mib']:.2f} MiB); OS threads max "
          f"{report['max_os_threads']} (before {report['before']['os_threads']}, after "
          f"{report['after']['os_threads']}); fds max {report['max_fds']} (before {report['before']['fds']}, "
          f"after {report['after']['fds']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
