"""End to end against rtmlib: detector + pose on whole frames, same YOLOX-Nano ONNX, same pose ONNX, same threads.

    python -m benchmarks.bench_peers_e2e [--threads 1] [--runs 7] [--iters 3] [--sizes 416 256]
        [--out benchmarks/results/peers_e2e.json]

Needs torch (the pose models are exported here) and rtmlib (``pip install --no-deps rtmlib``, see bench_peers).

Pose models (random lively weights; speed does not depend on them), each against the rtmlib class for its contract:
- SimCC: RTMPose-t (``compress.models`` rtmpose_t, 192x256, decode 'none')  vs rtmlib ``RTMPose``
- heatmap UDP: Lite-HRNet-18 (192x256, UDP + DARK)                          vs rtmlib ``ViTPose``
Detector: the packaged YOLOX-Nano (edgepose/assets/detector) for both sides. rtmlib's ``YOLOX`` is given the same
thresholds as ``YoloxDetector`` (score 0.3, NMS 0.45) and ``det_mode='multiclass'``; its boxes of class 0 go to its
pose class (this 80-class COCO model would otherwise hand every object to the pose model). rtmlib's detector gets
the BGR frame and its pose class the RGB frame (our models take RGB; rtmlib never swaps channels), converted inside
its timed call. Each rtmlib session is replaced by one with the same ``intra_op_num_threads``. edgepose runs
``PoseEstimator(pose, detector=YoloxDetector(..., input_size=S))`` with its defaults (pose NMS 0.9 on detector
boxes, which rtmlib does not do).

Contenders, per detector input size S in ``--sizes`` (rtmlib's ``model_input_size`` set to the same S):
``edgepose/<contract>@S`` and ``rtmlib/<contract>@S``; and the parts: ``edgepose.detect@S`` / ``rtmlib.detect@S``
(detector alone) and ``edgepose.pose/<contract>`` / ``rtmlib.pose/<contract>`` (pose alone on the boxes edgepose's
detector found at the first size). Frame sets: one person (000000000785.jpg, also the packaged sample) and four
persons (000000196141.jpg and 000000197388.jpg, 4 detected persons each). Latency per frame set: mean over its
frames of the median of ``--iters`` calls; every contender runs in every run, the order rotating (interleaved);
ratios rtmlib / edgepose per run, median over runs.

Video (``--stream-frames N``, 0 to skip): N frames cycling through the three photos, detector on every frame, the
same models and per-session thread counts; rtmlib in its only mode (detect, then pose, frame after frame) against
``estimator.stream(frames, track=False)``, which overlaps the detection of one frame with the pose estimation of
the one before in threads. Frames per second, runs interleaved, median ratio. This is throughput on a video, not
the latency of one frame (the per-frame table above).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import cv2
import numpy as np

from benchmarks.bench_peers import CARDS, IMAGENET, SAMPLES, SIZE, export, lively, ort_session, rtmlib_tool
from edgepose.assets import DEFAULT_DETECTOR
from edgepose.bench.environment import environment, package_version
from edgepose.card import ModelCard
from edgepose.detector import YoloxDetector
from edgepose.io import atomic_write_text, read_image
from edgepose.pipeline import PoseEstimator

FRAME_SETS = {"1_person": ["000000000785.jpg"], "4_persons": ["000000196141.jpg", "000000197388.jpg"]}
RTMPOSE_T_CARD = ModelCard(input_size=SIZE, codec="simcc", simcc_split_ratio=2.0, sigma=(4.9, 5.66), decode="none",
                           name="rtmpose_t-simcc (random weights)", **IMAGENET)


def pose_models(tmp: str) -> dict[str, tuple[str, ModelCard, str]]:
    """contract -> (ONNX path, card, description), exported here."""
    from compress.models import build_model
    from deploy.export import export_model

    rtmpose = lively(build_model("rtmpose_t", head="simcc", num_keypoints=17, input_size=SIZE))
    simcc = export_model(rtmpose, RTMPOSE_T_CARD, os.path.join(tmp, "rtmpose_t.onnx"))
    udp = export("heatmap", CARDS["udp"], os.path.join(tmp, "lite_hrnet_18_heatmap.onnx"))
    return {"simcc": (simcc, RTMPOSE_T_CARD, "rtmpose_t simcc 192x256, random (lively) weights"),
            "udp": (udp, CARDS["udp"], "lite_hrnet_18 heatmap 192x256 UDP + DARK, random (lively) weights")}


def rtmlib_detector(size: int, threads: int | None):
    """rtmlib's YOLOX on the packaged detector at ``size``, with YoloxDetector's thresholds and our thread count."""
    import contextlib
    import io

    from rtmlib import YOLOX

    with contextlib.redirect_stdout(io.StringIO()):
        tool = YOLOX(str(DEFAULT_DETECTOR), model_input_size=(size, size), nms_thr=0.45, score_thr=0.3,
                     det_mode="multiclass", backend="onnxruntime", device="cpu")
    if threads:
        tool.session = ort_session(str(DEFAULT_DETECTOR), threads)
    return tool


def rtmlib_people(detector, frame: np.ndarray) -> np.ndarray:
    """rtmlib detector boxes of class 0 (person)."""
    boxes, classes = detector(frame)
    return np.asarray(boxes).reshape(-1, 4)[np.asarray(classes).reshape(-1) == 0]


def build_contenders(models: dict, sizes: list[int], threads: int | None, frames: dict) -> tuple[dict, list, dict]:
    """label -> callable(frame, frame name) (the pose-only ones look their boxes up by name); what to close; the
    boxes each side's detector finds, per size and frame."""
    options = {"threads": threads} if threads else {}
    calls, owned, boxes = {}, [], {}
    ours_det = {s: YoloxDetector(DEFAULT_DETECTOR, input_size=s, backend_options=options) for s in sizes}
    theirs_det = {s: rtmlib_detector(s, threads) for s in sizes}
    owned += list(ours_det.values())
    for s in sizes:
        calls[f"edgepose.detect@{s}"] = lambda f, n, d=ours_det[s]: d(f)
        calls[f"rtmlib.detect@{s}"] = lambda f, n, d=theirs_det[s]: rtmlib_people(d, f)
        boxes[s] = {name: {"edgepose": ours_det[s](f)[0].tolist(), "rtmlib": rtmlib_people(theirs_det[s], f).tolist()}
                    for name, f in frames.items()}
    given = {name: np.asarray(boxes[sizes[0]][name]["edgepose"], np.float32) for name in frames}
    for contract, (path, card, _) in models.items():
        tool = rtmlib_tool(contract, path, card, threads)
        plain = PoseEstimator(path, card=card, backend_options=options)
        owned.append(plain)
        calls[f"edgepose.pose/{contract}"] = lambda f, n, e=plain: e(f, given[n])
        calls[f"rtmlib.pose/{contract}"] = lambda f, n, t=tool: t(cv2.cvtColor(f, cv2.COLOR_BGR2RGB), list(given[n]))
        for s in sizes:
            estimator = PoseEstimator(path, card=card, detector=ours_det[s], backend_options=options)
            owned.append(estimator)
            calls[f"edgepose/{contract}@{s}"] = lambda f, n, e=estimator: e(f)
            calls[f"rtmlib/{contract}@{s}"] = (
                lambda f, n, d=theirs_det[s], t=tool: t(cv2.cvtColor(f, cv2.COLOR_BGR2RGB), list(rtmlib_people(d, f))))
    return calls, owned, boxes


def time_runs(calls: dict, frames: dict, runs: int, iters: int) -> dict:
    """label -> frame set -> per-run ms (mean over the set's frames of the median of ``iters`` calls)."""
    labels = list(calls)
    out: dict = {label: {s: [] for s in FRAME_SETS} for label in labels}
    for run in range(runs):
        for label in labels[run % len(labels):] + labels[:run % len(labels)]:
            fn = calls[label]
            for set_name, names in FRAME_SETS.items():
                fn(frames[names[0]], names[0])  # settle
                per_frame = []
                for name in names:
                    samples = []
                    for _ in range(iters):
                        t0 = time.perf_counter()
                        fn(frames[name], name)
                        samples.append(time.perf_counter() - t0)
                    per_frame.append(float(np.median(samples)) * 1e3)
                out[label][set_name].append(float(np.mean(per_frame)))
        print(f"run {run + 1}/{runs}", file=sys.stderr)
    return out


def time_streams(models: dict, size: int, threads: int | None, frames: dict, count: int, runs: int) -> dict:
    """contract -> {"edgepose_fps": [...], "rtmlib_fps": [...], "ratio": median of per-run rtmlib/edgepose time}."""
    options = {"threads": threads} if threads else {}
    video = [frames[name] for _, name in zip(range(count), _cycle(list(frames)), strict=False)]
    out = {}
    for contract, (path, card, _) in models.items():
        tool = rtmlib_tool(contract, path, card, threads)
        theirs = rtmlib_detector(size, threads)
        ours = PoseEstimator(path, card=card, detector=YoloxDetector(DEFAULT_DETECTOR, input_size=size,
                                                                       backend_options=options),
                             backend_options=options)
        fps = {"edgepose": [], "rtmlib": []}
        try:
            for run in range(runs):
                for side in (("edgepose", "rtmlib") if run % 2 == 0 else ("rtmlib", "edgepose")):
                    t0 = time.perf_counter()
                    if side == "edgepose":
                        with ours.stream(video, track=False, keep_frames=False) as stream:
                            done = sum(1 for _ in stream)
                    else:
                        done = 0
                        for frame in video:
                            tool(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), list(rtmlib_people(theirs, frame)))
                            done += 1
                    fps[side].append(done / (time.perf_counter() - t0))
        finally:
            ours.close()
        runs_ratio = [e / r for e, r in zip(fps["edgepose"], fps["rtmlib"], strict=True)]
        out[contract] = {"edgepose_fps": fps["edgepose"], "rtmlib_fps": fps["rtmlib"],
                         "edgepose_over_rtmlib_fps": float(np.median(runs_ratio)), "runs_ratio": runs_ratio}
    return out


def _cycle(items: list):
    while True:
        yield from items


def ratio(latency: dict, peer: str, ours: str, set_name: str) -> dict:
    """peer / edgepose per run: median, min, max, runs."""
    runs = [p / e for p, e in zip(latency[peer][set_name], latency[ours][set_name], strict=True)]
    return {"median": float(np.median(runs)), "min": float(min(runs)), "max": float(max(runs)), "runs": runs}


def main(argv: list[str] | None = None) -> int:
    """Run the comparison, print a table and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of every session (0: ORT default)")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[416, 256], help="detector input sizes (both sides)")
    parser.add_argument("--stream-frames", type=int, default=60, help="video frames per stream run (0: skip)")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results", "peers_e2e.json"))
    args = parser.parse_args(argv)
    threads = args.threads or None
    frames = {name: read_image(SAMPLES / name) for names in FRAME_SETS.values() for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        models = pose_models(tmp)
        calls, owned, boxes = build_contenders(models, args.sizes, threads, frames)
        latency = time_runs(calls, frames, args.runs, args.iters)
        for thing in owned:
            thing.close()
        streams = (time_streams(models, args.sizes[0], threads, frames, args.stream_frames, args.runs)
                   if args.stream_frames else {})
    medians = {label: {s: float(np.median(v)) for s, v in sets.items()} for label, sets in latency.items()}
    first = args.sizes[0]
    comparisons: dict = {}
    for contract in models:
        for set_name in FRAME_SETS:
            entry = {f"same size {s}": ratio(latency, f"rtmlib/{contract}@{s}", f"edgepose/{contract}@{s}", set_name)
                     for s in args.sizes}
            for s in args.sizes[1:]:
                entry[f"edgepose {s} vs rtmlib {first}"] = ratio(latency, f"rtmlib/{contract}@{first}",
                                                                 f"edgepose/{contract}@{s}", set_name)
            entry["pose alone (same boxes)"] = ratio(latency, f"rtmlib.pose/{contract}", f"edgepose.pose/{contract}",
                                                     set_name)
            comparisons[f"{contract}/{set_name}"] = entry
    detector_ratios = {f"{s}/{set_name}": ratio(latency, f"rtmlib.detect@{s}", f"edgepose.detect@{s}", set_name)
                       for s in args.sizes for set_name in FRAME_SETS}
    record = {
        "benchmark": "peers_e2e",
        "command": " ".join(["python -m benchmarks.bench_peers_e2e", *(argv or sys.argv[1:])]),
        "models": {c: m[2] for c, m in models.items()}, "detector": "edgepose/assets/detector/yolox_nano_416x416.onnx "
        "(YOLOX-Nano, COCO 80 classes, free input size) for both sides",
        "frame_sets": FRAME_SETS, "threads": threads or "default", "runs": args.runs, "iters": args.iters,
        "sizes": args.sizes, "rtmlib": package_version("rtmlib"),
        "ratios_rtmlib_over_edgepose": comparisons, "detector_alone_ratios_rtmlib_over_edgepose": detector_ratios,
        "median_ms": medians, "runs_ms": latency, "detector_boxes": boxes,
        "video_stream": {"frames": args.stream_frames, "detector_size": args.sizes[0], "by_contract": streams},
        "notes": [
            "Shared machine: 2 cores used by other jobs at the same time (load average far above 2); absolute ms "
            "vary from run to run; ratios come from interleaved runs (medians).",
            "Same models: both sides run the same YOLOX-Nano ONNX at the same input size and the same pose ONNX, "
            "one intra-op thread each by default. 'edgepose S vs rtmlib 416' compares edgepose's smaller-input "
            "detector option (--detector-size S) with rtmlib at the 416 size: a different detector input, not the "
            "same-model figure.",
            "edgepose runs pose NMS (OKS 0.9) on detector boxes, rtmlib does not.",
        ],
        "environment": environment([threads or "default"], ["CPUExecutionProvider"]),
    }
    atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")
    print("| comparison | " + " | ".join(FRAME_SETS) + " |")
    print("|---" * (1 + len(FRAME_SETS)) + "|")
    for contract in models:
        for key in comparisons[f"{contract}/{next(iter(FRAME_SETS))}"]:
            cells = [f"{comparisons[f'{contract}/{s}'][key]['median']:.2f}x" for s in FRAME_SETS]
            print(f"| {contract}: rtmlib / edgepose, {key} | " + " | ".join(cells) + " |")
    for s in args.sizes:
        print(f"| detector alone @{s}: rtmlib / edgepose | "
              + " | ".join(f"{detector_ratios[f'{s}/{n}']['median']:.2f}x" for n in FRAME_SETS) + " |")
    print("| label | " + " | ".join(f"{s} ms" for s in FRAME_SETS) + " |")
    for label, sets in medians.items():
        print(f"| {label} | " + " | ".join(f"{v:.1f}" for v in sets.values()) + " |")
    for contract, row in streams.items():
        print(f"| video {contract}: edgepose.stream / rtmlib loop FPS | {row['edgepose_over_rtmlib_fps']:.2f}x "
              f"({np.median(row['edgepose_fps']):.1f} vs {np.median(row['rtmlib_fps']):.1f} FPS) |")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
