"""``edgepose predict``: poses for images, folders and videos; COCO results json plus annotated media."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import warnings

HELP = "estimate poses in images, folders or videos; writes predictions.json and annotated media"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``edgepose predict``."""
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="images, folders of images, video files, camera indices (0) or stream URLs")
    parser.add_argument("--model", required=True, help="pose model (.onnx)")
    parser.add_argument("--card", help="model card (YAML/JSON) for a model without an embedded one")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--detector", help="person detector (YOLOX ONNX)")
    group.add_argument("--boxes", help="person boxes: COCO detection results json, or {file_name: [[x,y,w,h,s]]}")
    parser.add_argument("--coco", help="COCO annotation json: image ids are matched by file name")
    parser.add_argument("--box-threshold", type=float, default=0.0, help="drop given boxes scoring below this")
    parser.add_argument("--flip", action="store_true", help="flip test (average with the mirrored crop)")
    parser.add_argument("--pose-nms", type=float, default=0.9, help="OKS threshold of pose NMS on detector boxes")
    parser.add_argument("--no-pose-nms", action="store_true", help="keep every detector box's pose")
    parser.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads")
    parser.add_argument("--out", default="edgepose_out", help="output folder (default: edgepose_out)")
    parser.add_argument("--no-draw", action="store_true", help="write predictions.json only")
    video = parser.add_argument_group("videos and cameras (threaded stream, tracked ids, STEM.jsonl per frame)")
    video.add_argument("--detect-every", type=int, default=1, metavar="K",
                       help="run the detector on every K-th frame, carrying boxes from keypoints in between")
    video.add_argument("--no-track", action="store_true", help="no person ids")
    video.add_argument("--track-by", choices=("oks", "iou"), default="oks",
                       help="match persons across frames by keypoint similarity (default) or box overlap")
    video.add_argument("--smooth", type=float, nargs=2, metavar=("MIN_CUTOFF", "BETA"),
                       help="One-Euro keypoint smoothing per track, e.g. --smooth 1.0 0.01")
    video.add_argument("--max-frames", type=int, help="stop each video or camera after this many frames")


def _warn(message: str) -> None:
    print(f"edgepose predict: warning: {message}", file=sys.stderr)


def _show(message, category, filename, lineno, file=None, line=None) -> None:
    _warn(str(message))


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM (docker stop, systemd) ends a camera run like Ctrl-C: outputs are kept


def run(args: argparse.Namespace) -> int:
    """Run the estimator over every input; items that fail are skipped with a warning."""
    from edgepose.cli.input_sources import collect_inputs
    from edgepose.coco.files import image_ids, load_boxes
    from edgepose.errors import InputError, OutputError
    from edgepose.io import atomic_write_text
    from edgepose.pipeline import PoseEstimator
    from edgepose.video.smoothing import SmoothingSettings
    from edgepose.video.stream import StreamOptions
    from edgepose.video.tracking import TrackerSettings

    if args.detector is None and args.boxes is None:
        raise InputError("give person boxes: --detector DET.onnx or --boxes BOXES.json")
    items = collect_inputs(args.inputs)
    smoothing = SmoothingSettings(min_cutoff=args.smooth[0], beta=args.smooth[1]) if args.smooth else None
    stream_options = StreamOptions(detect_every=args.detect_every, track=not args.no_track, max_frames=args.max_frames,
                                   tracker=TrackerSettings(similarity=args.track_by), smoothing=smoothing,
                                   keep_frames=not args.no_draw)  # bad settings are refused before opening anything
    ids = image_ids(args.coco) if args.coco else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        boxes = load_boxes(args.boxes, ids, args.box_threshold) if args.boxes else None
    for w in caught:
        _warn(str(w.message))
    options = {"threads": args.threads} if args.threads else {}
    estimator = PoseEstimator(args.model, card=args.card, detector=args.detector, flip=args.flip,
                              pose_nms=None if args.no_pose_nms else args.pose_nms, backend_options=options)
    from edgepose.cli.predict_items import ItemRunner

    runner = ItemRunner(estimator, args.out, boxes=boxes, ids=ids, draw=not args.no_draw,
                        stream_options=stream_options)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    results, done = [], 0
    with estimator, warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _show  # a skipped stream frame: one line on stderr
        for item in items:
            try:
                results += runner.run(item)
                done += 1
            except (InputError, OutputError) as exc:
                _warn(f"skipped {item.path}: {exc}")
    path = os.path.join(args.out, "predictions.json")
    atomic_write_text(path, json.dumps(results) + "\n")
    print(f"{len(results)} poses from {done}/{len(items)} inputs -> {path}")
    return 0 if done else 1
