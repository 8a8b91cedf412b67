"""``edgepose predict``: poses for images, folders and videos; COCO results json plus annotated media."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import warnings

from edgepose.errors import InputError
from edgepose.image_size import DEFAULT_MAX_PIXELS
from edgepose.redact import redact

HELP = "estimate poses in images, folders or videos; writes predictions.json and annotated media"
PARTIAL = "PARTIAL"  # OUT/PARTIAL: present while OUT/predictions.json holds an interrupted run's results


def _use_packaged_defaults(args: argparse.Namespace) -> None:
    """No --model: the packaged pose model; neither --detector nor --boxes: the packaged person detector."""
    from edgepose.assets import default_detector, default_pose_model

    if args.model is None:
        if args.card is not None:
            raise InputError("--card describes your model: give it with --model")
        args.model = default_pose_model()
        print("using the packaged pose model (BlazePose lite, modest accuracy); pass --model for your own",
              file=sys.stderr)
    if args.detector is None and args.boxes is None:
        args.detector = default_detector()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``edgepose predict``."""
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="images, folders of images, video files, camera indices (0) or stream URLs")
    parser.add_argument("--model", help="pose model (.onnx, .engine, .ts, .pt2, or an MMDeploy SDK model folder; "
                                        "default: the packaged BlazePose-lite "
                                        "COCO-17 model, real but of modest accuracy: AP 0.43 on COCO samples)")
    parser.add_argument("--card", help="model card (YAML/JSON) for a model without an embedded one")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--detector", help="person detector (YOLOX ONNX; default: the packaged YOLOX-Nano)")
    group.add_argument("--boxes", help="person boxes: COCO detection results json, or {file_name: [[x,y,w,h,s]]}")
    parser.add_argument("--detector-size", type=int, metavar="N",
                        help="run the detector at N x N, a multiple of 32 (a detector with a free input size, like the "
                             "packaged one; default 416). 256 takes about half the time of 416 with the same person "
                             "recall on the COCO samples")
    parser.add_argument("--coco", help="COCO annotation json: image ids are matched by file name")
    parser.add_argument("--box-threshold", type=float, default=0.0, help="drop given boxes scoring below this")
    parser.add_argument("--flip", action="store_true", help="flip test (average with the mirrored crop)")
    parser.add_argument("--pose-nms", type=float, default=0.9, help="OKS threshold of pose NMS on detector boxes")
    parser.add_argument("--no-pose-nms", action="store_true", help="keep every detector box's pose")
    parser.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads")
    parser.add_argument("--no-batch-rewrite", action="store_true",
                        help="run an ONNX model with a fixed batch of 1 once per person (default: its batch axis "
                             "is made dynamic at load time where the graph allows)")
    parser.add_argument("--out", default="edgepose_out", help="output folder (default: edgepose_out)")
    parser.add_argument("--no-draw", action="store_true", help="write predictions.json only")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, metavar="N",
                        help="refuse images and video frames with more pixels than this, before decoding them "
                             f"(default: {DEFAULT_MAX_PIXELS})")
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
    print(f"edgepose predict: warning: {redact(message)}", file=sys.stderr)


def _show(message, category, filename, lineno, file=None, line=None) -> None:
    _warn(str(message))


def _check_numbers(args: argparse.Namespace) -> None:
    from edgepose.errors import InputError

    if not math.isfinite(args.box_threshold):
        raise InputError(f"--box-threshold must be a number, got {args.box_threshold}")
    if not 0.0 <= args.pose_nms <= 1.0:
        raise InputError(f"--pose-nms is an OKS threshold between 0 and 1, got {args.pose_nms}")
    if args.max_pixels < 1:
        raise InputError(f"--max-pixels must be at least 1, got {args.max_pixels}")
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads must be at least 1, got {args.threads}")
    if args.detector_size is not None and args.boxes:
        raise InputError("--detector-size sets the person detector's input size; with --boxes no detector runs")


def _load_boxes(args: argparse.Namespace, ids: dict | None, items) -> dict | None:
    """--boxes per file name; warnings for boxes no input uses, an error when none of them is for an input."""
    from edgepose.coco.files import listing, load_boxes, unused_boxes
    from edgepose.errors import InputError

    if not args.boxes:
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        boxes = load_boxes(args.boxes, ids, args.box_threshold)
    for w in caught:
        _warn(str(w.message))
    names = {os.path.basename(item.path) for item in items if item.kind == "image"}
    unused = unused_boxes(boxes, names)
    if unused and names and len(unused) == sum(len(b) > 0 for b, _ in boxes.values()):
        raise InputError(f"none of the images with boxes in {args.boxes} is an input (they are {listing(unused)}): "
                         "boxes are matched to inputs by file name")
    if unused:
        _warn(f"{args.boxes} has boxes for {len(unused)} image(s) that are not inputs, not used: {listing(unused)}")
    return boxes


def _output_paths(out: str, items, draw: bool) -> tuple[list[str], list[str]]:
    """The files and folders a run writes under ``out``, checked before any work."""
    from edgepose.cli.input_sources import output_name

    files = [os.path.join(out, "predictions.json"), os.path.join(out, PARTIAL)]
    for item in items:
        name = output_name(item)
        if item.kind == "image":
            files += [os.path.join(out, "vis", name)] if draw else []
        else:
            files += [os.path.join(out, f"{name}.jsonl")] + ([os.path.join(out, f"{name}_pose.mp4")] if draw else [])
    return files, [os.path.join(out, "vis")] if draw and any(i.kind == "image" for i in items) else []


def run(args: argparse.Namespace) -> int:
    """Run the estimator over every input; items that fail are skipped with a warning. Output problems are found
    before any work; a second run on the same --out is refused while this one runs."""
    from edgepose.cli.input_sources import collect_inputs, refuse_colliding_image_ids
    from edgepose.cli.interrupts import raise_on_sigterm
    from edgepose.cli.output_folder import output_folder
    from edgepose.coco.files import image_ids
    from edgepose.pipeline import PoseEstimator
    from edgepose.video.smoothing import SmoothingSettings
    from edgepose.video.stream import StreamOptions
    from edgepose.video.tracking import TrackerSettings

    _use_packaged_defaults(args)
    _check_numbers(args)
    items = collect_inputs(args.inputs)
    if not args.coco:
        refuse_colliding_image_ids(items)
    smoothing = SmoothingSettings(min_cutoff=args.smooth[0], beta=args.smooth[1]) if args.smooth else None
    stream_options = StreamOptions(detect_every=args.detect_every, track=not args.no_track, max_frames=args.max_frames,
                                   tracker=TrackerSettings(similarity=args.track_by), smoothing=smoothing,
                                   keep_frames=not args.no_draw, max_pixels=args.max_pixels)
    ids = image_ids(args.coco) if args.coco else None
    boxes = _load_boxes(args, ids, items)
    files, folders = _output_paths(args.out, items, not args.no_draw)
    raise_on_sigterm()
    with output_folder(args.out, files, folders):
        options = {"threads": args.threads} if args.threads else {}
        if args.no_batch_rewrite:
            options["batch_rewrite"] = False
        detector = args.detector
        if args.detector_size is not None:
            from edgepose.detector import open_detector

            detector = open_detector(args.detector, input_size=args.detector_size, backend_options=options)
        with warnings.catch_warnings():
            warnings.showwarning = _show  # a card inferred from the model's shapes: one line on stderr
            estimator = PoseEstimator(args.model, card=args.card, detector=detector, flip=args.flip,
                                      pose_nms=None if args.no_pose_nms else args.pose_nms, backend_options=options)
        from edgepose.cli.predict_items import ItemRunner

        runner = ItemRunner(estimator, args.out, boxes=boxes, ids=ids, draw=not args.no_draw,
                            stream_options=stream_options, max_pixels=args.max_pixels)
        owned = detector if detector is not args.detector else contextlib.nullcontext()  # opened here: closed here
        with owned, estimator, warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = _show  # a skipped stream frame, a dropped box: one line on stderr
            return _run_items(runner, items, args.out)


def _run_items(runner, items, out: str) -> int:
    """Every item in turn; predictions.json at the end, or (Ctrl-C, SIGTERM) of the inputs done, marked partial."""
    from edgepose.errors import InputError, OutputError
    from edgepose.io import atomic_write_text

    results, done, finished = [], 0, 0
    try:
        for item in items:
            try:
                results += runner.run(item)
                done += 1
            except (InputError, OutputError) as exc:
                _warn(f"skipped {item.path}: {exc}")
            finished += 1
    except KeyboardInterrupt as exc:
        return _write_partial(exc, out, items, results, finished)
    path = os.path.join(out, "predictions.json")
    atomic_write_text(path, json.dumps(results) + "\n")
    if os.path.isfile(os.path.join(out, PARTIAL)):
        os.remove(os.path.join(out, PARTIAL))  # this run is complete: the old mark no longer applies
    print(f"{len(results)} poses from {done}/{len(items)} inputs -> {path}")
    return 0 if done else 1


def _write_partial(exc: KeyboardInterrupt, out: str, items, results: list[dict], finished: int) -> int:
    """predictions.json of what was done, OUT/PARTIAL saying so, one line on stderr; the exit code of the signal."""
    from edgepose.cli.interrupts import exit_code, signal_name
    from edgepose.cli.predict_stream import StreamStopped
    from edgepose.io import atomic_write_text

    path, mark = os.path.join(out, "predictions.json"), os.path.join(out, PARTIAL)
    if isinstance(exc, StreamStopped):
        results = results + exc.results
        of = f" of {exc.total}" if exc.total else ""
        source = items[finished].path
        name = f"camera {source}" if source.isdigit() else redact(source)
        where = f"at frame {exc.frames}{of} of {name} (input {finished + 1} of {len(items)})"
        held = (f"{path} holds the {len(results)} poses so far and {' and '.join(exc.files)} the first {exc.frames} "
                "frames")
    else:
        where = f"after {finished} of {len(items)} inputs"
        held = f"{path} holds the {len(results)} poses of those"
    atomic_write_text(path, json.dumps(results) + "\n")
    message = f"interrupted by {signal_name(exc)} {where}; {held} ({mark} marks it partial)"
    atomic_write_text(mark, message + "\n")
    print(f"edgepose predict: {message}", file=sys.stderr)
    return exit_code(exc)
