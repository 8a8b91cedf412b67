"""The person detector's share of a one-person frame, per detector variant, with recall and AP on the COCO samples.

    python -m benchmarks.bench_detector [--threads 1] [--runs 7] [--iters 5] [--sizes 416 320 256 224]
        [--no-int8] [--out benchmarks/results/detector.json]

Variants: the packaged YOLOX-Nano (FP32, free input size) at each of ``--sizes``, and an INT8 copy (ONNX Runtime
static QDQ, U8S8, per-channel weights, head Convs kept float; ``deploy.quantize.detector``) built here, calibrated
on the 4 carried COCO frames (tests/data/coco_val_samples) and their mirror images letterboxed at 416 and 256
(16 inputs), run at 416 and 256. Calibration frames are the evaluation frames: the INT8 recall is an optimistic one.

Per variant: person recall at IoU >= 0.5 against the 12 annotated persons (non-crowd, with keypoints, area >= 32^2)
at score > 0.3 and > 0.25; COCO keypoint AP of the pose pipeline (packaged BlazePose-lite pose model, detector
boxes, pose NMS 0.9, ``edgepose.coco.evaluate``); the detector's time split into letterbox, inference and
decode + NMS; and, on the one-person frame 000000000785.jpg, whole ``PoseEstimator`` calls with each of two pose
models: the packaged BlazePose lite, and a student-sized Lite-HRNet-tiny at 96x128 (random lively weights, exported
here). The share is the estimator's own ``detect`` seconds over the call's wall time, median over calls.
Every (variant, pose model) pair runs in every run, the order rotating run by run (interleaved); the figures are
medians over runs. ``detect_every_k_share`` is derived from those medians: the share when the detector runs on
every k-th video frame (``--detect-every``) and the pose model on every frame.
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

from edgepose.assets import DEFAULT_DETECTOR, DEFAULT_POSE_MODEL
from edgepose.bench.environment import environment
from edgepose.card import ModelCard
from edgepose.detector import YoloxDetector
from edgepose.io import atomic_write_text, read_image
from edgepose.pipeline import PoseEstimator

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "data" / "coco_val_samples"
ONE_PERSON = "000000000785.jpg"
STUDENT_SIZE = (96, 128)
STUDENT_CARD = ModelCard(input_size=STUDENT_SIZE, codec="msra", heatmap_size=(24, 32), decode="dark",
                         mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), color="rgb",
                         name="lite_hrnet_tiny-heatmap 96x128 (random weights)")
INT8_SIZES = (416, 256)


def ground_truth() -> tuple[dict, list[tuple[int, str, np.ndarray, np.ndarray]]]:
    """The COCO json and (image id, file, frame, GT person boxes xyxy) per image, as tests/runtime/test_detector."""
    coco = json.loads((SAMPLES / "test_coco.json").read_text())
    out = []
    for image in sorted(coco["images"], key=lambda i: i["id"]):
        gts = [a["bbox"] for a in coco["annotations"] if a["image_id"] == image["id"] and not a["iscrowd"]
               and a["num_keypoints"] > 0 and a["area"] >= 32 * 32]
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in gts], np.float64).reshape(-1, 4)
        out.append((image["id"], image["file_name"], read_image(SAMPLES / image["file_name"]), boxes))
    return coco, out


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box with (N, 4) boxes."""
    lo, hi = np.maximum(box[:2], boxes[:, :2]), np.minimum(box[2:], boxes[:, 2:])
    inter = np.clip(hi - lo, 0, None).prod(axis=1)
    area = (box[2] - box[0]) * (box[3] - box[1])
    return inter / (area + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter)


def recall(detector: YoloxDetector, data: list) -> dict:
    """Hits / total GT persons at IoU >= 0.5, and each GT's best IoU."""
    hits, best = 0, []
    for _, _, frame, gts in data:
        boxes, _ = detector(frame)
        for gt in gts:
            match = float(iou(gt, boxes.astype(np.float64)).max()) if len(boxes) else 0.0
            best.append(round(match, 3))
            hits += match >= 0.5
    return {"hits": int(hits), "total": len(best), "recall": hits / len(best), "best_iou_per_person": best}


def pose_ap(detector: YoloxDetector, data: list, threads: int | None) -> dict:
    """COCO keypoint AP / AR of the packaged pose model on this detector's boxes."""
    from edgepose.coco.evaluate import coco_keypoint_eval

    options = {"threads": threads} if threads else {}
    results = []
    with PoseEstimator(str(DEFAULT_POSE_MODEL), detector=detector, backend_options=options) as estimator:
        for image_id, _, frame, _ in data:
            results += estimator(frame).to_coco(image_id)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "results.json")
        atomic_write_text(path, json.dumps(results))
        stats = coco_keypoint_eval(SAMPLES / "test_coco.json", path, verbose=False)
    return {"AP": stats["AP"], "AP50": stats["AP50"], "AR": stats["AR"], "poses": len(results)}


def student_model(tmp: str) -> str:
    """Lite-HRNet-tiny heatmap at 96x128 with lively random weights, exported with its card."""
    from compress.models import build_model
    from compress.models.random_init import realistic_random_weights
    from deploy.export import export_model

    model = realistic_random_weights(build_model("lite_hrnet_tiny", head="heatmap", num_keypoints=17,
                                                 input_size=STUDENT_SIZE), 0)
    return export_model(model, STUDENT_CARD, os.path.join(tmp, "lite_hrnet_tiny_96x128.onnx"))


def int8_detector(tmp: str, data: list) -> tuple[str, dict]:
    """The packaged detector quantized here (see the module docstring); its path and the quantization report."""
    from deploy.quantize.detector import quantize_detector

    frames = [frame for _, _, frame, _ in data]
    report = quantize_detector(DEFAULT_DETECTOR, os.path.join(tmp, "yolox_nano_int8.onnx"), frames, INT8_SIZES)
    return report.dst, report.to_dict()


def detector_split(detector: YoloxDetector, frame: np.ndarray, iters: int) -> dict[str, float]:
    """Median ms of one detector call's parts: letterbox, inference, decode + clip + NMS, and their sum."""
    parts: dict[str, list[float]] = {"letterbox": [], "inference": [], "decode_nms": [], "call": []}
    for _ in range(iters):
        t0 = time.perf_counter()
        blob, ratio = detector.preprocess(frame)
        t1 = time.perf_counter()
        raw = detector.backend.infer({detector.input_name: blob})[detector.output_name]
        t2 = time.perf_counter()
        detector.postprocess(raw, ratio, frame.shape[:2])
        t3 = time.perf_counter()
        for name, seconds in (("letterbox", t1 - t0), ("inference", t2 - t1), ("decode_nms", t3 - t2),
                              ("call", t3 - t0)):
            parts[name].append(seconds)
    return {k: float(np.median(v)) * 1e3 for k, v in parts.items()}


def frame_times(estimator: PoseEstimator, frame: np.ndarray, iters: int) -> dict[str, float]:
    """Median ms over ``iters`` whole estimator calls: the call and each stage it reports."""
    calls, stages = [], {}
    for _ in range(iters):
        t0 = time.perf_counter()
        poses = estimator(frame)
        calls.append(time.perf_counter() - t0)
        for name, seconds in poses.meta["seconds"].items():
            stages.setdefault(name, []).append(seconds)
    out = {"frame": float(np.median(calls)) * 1e3}
    out.update({name: float(np.median(v)) * 1e3 for name, v in stages.items()})
    share = [s / c for s, c in zip(stages["detect"], calls, strict=True)]
    out["detector_share"] = float(np.median(share))
    return out


def main(argv: list[str] | None = None) -> int:
    """Build the variants, measure them interleaved, print a table and write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads of every session (0: ORT default)")
    parser.add_argument("--runs", type=int, default=7, help="interleaved runs (figures are their medians)")
    parser.add_argument("--iters", type=int, default=5, help="calls per contender and run")
    parser.add_argument("--sizes", type=int, nargs="+", default=[416, 320, 256, 224], help="FP32 input sizes")
    parser.add_argument("--no-int8", action="store_true", help="skip the INT8 variant")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "detector.json"))
    args = parser.parse_args(argv)
    threads = args.threads or None
    options = {"threads": threads} if threads else {}
    coco, data = ground_truth()
    one = next(frame for _, name, frame, _ in data if name == ONE_PERSON)
    with tempfile.TemporaryDirectory() as tmp:
        variants = {f"fp32_{s}": (str(DEFAULT_DETECTOR), s) for s in args.sizes}
        quantization = None
        if not args.no_int8:
            int8_path, quantization = int8_detector(tmp, data)
            variants.update({f"int8_{s}": (int8_path, s) for s in INT8_SIZES})
        detectors = {name: YoloxDetector(path, input_size=size, backend_options=options)
                     for name, (path, size) in variants.items()}
        quality = {}
        for name, (path, size) in variants.items():
            low = YoloxDetector(path, input_size=size, score_threshold=0.25, backend_options=options)
            quality[name] = {"recall": recall(detectors[name], data), "recall_score_0.25": recall(low, data),
                             "pose_ap_blazepose": pose_ap(detectors[name], data, threads)}
            low.close()
            print(f"{name}: recall {quality[name]['recall']['hits']}/{quality[name]['recall']['total']}, "
                  f"AP {quality[name]['pose_ap_blazepose']['AP']:.3f}", file=sys.stderr)
        poses = {"blazepose_lite (packaged)": str(DEFAULT_POSE_MODEL),
                 "lite_hrnet_tiny 96x128 (random weights)": student_model(tmp)}
        estimators = {(v, p): PoseEstimator(path, detector=detectors[v], backend_options=options)
                      for v in variants for p, path in poses.items()}
        keys = list(estimators)
        per_run: dict = {k: [] for k in keys}
        splits: dict = {v: [] for v in variants}
        for run in range(args.runs):
            order = keys[run % len(keys):] + keys[:run % len(keys)]
            for key in order:
                estimator = estimators[key]
                estimator(one)  # settle: the previous contender's threads may still spin
                per_run[key].append(frame_times(estimator, one, args.iters))
            for name in list(variants)[run % len(variants):] + list(variants)[:run % len(variants)]:
                splits[name].append(detector_split(detectors[name], one, args.iters))
            print(f"run {run + 1}/{args.runs}", file=sys.stderr)
        for estimator in estimators.values():
            estimator.close()
        for detector in detectors.values():
            detector.close()
    reference = f"fp32_{args.sizes[0]}"
    results = {}
    for name in variants:
        split = {k: float(np.median([s[k] for s in splits[name]])) for k in splits[name][0]}
        ratio = [s["call"] / r["call"] for s, r in zip(splits[name], splits[reference], strict=True)]
        frames = {}
        for pose in poses:
            runs = per_run[(name, pose)]
            med = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
            rest = med["frame"] - med["detect"]
            med["detect_every_k_share"] = {str(k): (med["detect"] / k) / (med["detect"] / k + rest) for k in (1, 2, 3)}
            med["detector_share_runs"] = [r["detector_share"] for r in runs]
            frames[pose] = med
        results[name] = {"model": variants[name][0].replace(str(ROOT) + os.sep, ""), "input_size": variants[name][1],
                         **quality[name], "detector_ms": split,
                         f"detector_call_ratio_to_{reference}": {"median": float(np.median(ratio)), "runs": ratio},
                         "one_person_frame": frames}
    record = {
        "benchmark": "detector", "command": " ".join(["python -m benchmarks.bench_detector", *(argv or sys.argv[1:])]),
        "one_person_frame": ONE_PERSON, "recall_frames": [name for _, name, _, _ in data],
        "gt_persons": "non-crowd, num_keypoints > 0, area >= 32*32 (12 on the 4 frames); hit: IoU >= 0.5",
        "threads": threads or "default", "runs": args.runs, "iters": args.iters,
        "int8_quantization": quantization, "variants": results,
        "notes": [
            "Shared machine: 2 cores used by other jobs at the same time; absolute ms vary from run to run, the "
            "ratios and shares come from interleaved runs (medians).",
            "detector_share: the estimator's 'detect' seconds over the wall time of the same call (one-person frame, "
            "pose NMS 0.9); detect_every_k_share: derived from the medians, detect/k over detect/k + the rest.",
            "INT8: calibrated on the evaluation frames (the only real frames the project carries), so its recall is "
            "optimistic; ONNX Runtime's CPU INT8 kernels for YOLOX-Nano's depthwise convs and SiLU (Sigmoid * x) "
            "Q/DQ pairs are not faster than FP32 here.",
        ],
        "environment": environment([threads or "default"], ["CPUExecutionProvider"]),
    }
    atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")
    print(f"| variant | recall (>0.3 / >0.25) | AP | detector ms (letterbox / infer / decode+NMS) | x of {reference} | "
          + " | ".join(f"{p}: frame ms, detector share (k=1/2/3)" for p in poses) + " |")
    print("|---" * (5 + len(poses)) + "|")
    for name, r in results.items():
        d = r["detector_ms"]
        cells = [f"{f['frame']:.1f}, {100 * f['detector_share']:.0f}% "
                 f"({'/'.join(f'{100 * v:.0f}' for v in f['detect_every_k_share'].values())})"
                 for f in r["one_person_frame"].values()]
        print(f"| {name} | {r['recall']['hits']}/{r['recall']['total']} / {r['recall_score_0.25']['hits']} | "
              f"{r['pose_ap_blazepose']['AP']:.3f} | {d['call']:.2f} ({d['letterbox']:.2f} / {d['inference']:.2f} / "
              f"{d['decode_nms']:.2f}) | {r[f'detector_call_ratio_to_{reference}']['median']:.2f} | "
              + " | ".join(cells) + " |")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
