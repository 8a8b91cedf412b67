"""Stream throughput: ``estimator.stream`` (decode, detection and pose inference overlapped in threads) against
the plain serial loop doing the same work (decode -> detect -> pose -> track), on the same video, in one run.

    python -m benchmarks.bench_stream [--model runs/student_distilled.onnx] [--frames 300] [--runs 5]

The video is written first (640x480 MJPG panning across the real COCO photos, as in soak_stream.py), so both sides
decode the same file. Settings: detect every frame, and every 5th frame with boxes carried from keypoints. Each
run times the serial loop and the stream back to back; the table holds medians over the runs. Writes
benchmarks/results/stream.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.soak_stream import YOLOX, panning_frames
from edgepose.bench.environment import environment
from edgepose.io import atomic_write_text
from edgepose.pipeline import PoseEstimator
from edgepose.video.frame_sources import open_frame_source
from edgepose.video.stream import boxes_from_keypoints
from edgepose.video.tracking import PoseTracker

ROOT = Path(__file__).resolve().parents[1]


def write_video(path: str, frames: int) -> None:
    """The benchmark clip: ``frames`` panning frames, MJPG at 30 FPS."""
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    for _, frame in zip(range(frames), panning_frames(per_photo=max(frames // 4, 1)), strict=False):
        writer.write(frame)
    writer.release()


def serial_loop(est: PoseEstimator, path: str, detect_every: int) -> tuple[int, int]:
    """The obvious single-threaded loop; returns (frames, persons)."""
    tracker = PoseTracker(sigmas=est.sigmas, smoothing={"min_cutoff": 1.0, "beta": 0.01})
    carried = (np.zeros((0, 4)), np.zeros(0, np.float32))
    frames = persons = 0
    with open_frame_source(path) as source:
        for frame in source:
            if frame.index % detect_every == 0 or len(carried[0]) == 0:
                boxes, scores = est.detect(frame.image)
            else:
                boxes, scores = carried
            poses = est(frame.image, boxes, scores, nms=True)
            carry, keep = boxes_from_keypoints(poses.xy, poses.scores, frame.image.shape, 0.3, 3, 1.15)
            carried = (carry, poses.box_scores[keep])
            tracker.update(poses.xy, poses.scores, poses.boxes, frame.time)
            frames, persons = frames + 1, persons + len(poses)
    return frames, persons


def streamed(est: PoseEstimator, path: str, detect_every: int) -> tuple[int, int]:
    """The same work through estimator.stream; returns (frames, persons)."""
    frames = persons = 0
    for result in est.stream(path, detect_every=detect_every, keep_frames=False,
                             smoothing={"min_cutoff": 1.0, "beta": 0.01}):
        frames, persons = frames + 1, persons + len(result.poses)
    return frames, persons


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "runs" / "student_distilled.onnx"))
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per model")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "stream.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, PoseEstimator(args.model, detector=str(YOLOX),
                                                             backend_options={"threads": args.threads}) as est:
        video = str(Path(tmp) / "pan.avi")
        write_video(video, args.frames)
        for every in (1, 5):
            serial_fps, stream_fps, counts = [], [], set()
            streamed(est, video, every)  # warm-up
            for _ in range(args.runs):
                for name, fn, out in (("serial", serial_loop, serial_fps), ("stream", streamed, stream_fps)):
                    start = time.perf_counter()
                    frames, persons = fn(est, video, every)
                    out.append(frames / (time.perf_counter() - start))
                    counts.add((name, frames, persons))
            ratios = [s / p for s, p in zip(stream_fps, serial_fps, strict=True)]
            rows.append({"detect_every": every, "serial_fps": round(statistics.median(serial_fps), 1),
                         "stream_fps": round(statistics.median(stream_fps), 1),
                         "speedup": round(statistics.median(ratios), 2),
                         "speedup_min_max": [round(min(ratios), 2), round(max(ratios), 2)],
                         "frames_persons": sorted(counts)})
            print(rows[-1])
    report = {"command": "python -m benchmarks.bench_stream " + " ".join(sys.argv[1:]), "model": args.model,
              "frames": args.frames, "runs": args.runs, "threads_per_model": args.threads, "rows": rows,
              "environment": environment(args.threads)}
    atomic_write_text(args.out, json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
