"""``edgepose data``: dataset tools. ``edgepose data synth --out DIR --train N --val M --seed S`` writes the
procedural synthetic person-keypoint dataset in COCO format (``compress.data.synthetic``)."""

from __future__ import annotations

import argparse

HELP = "dataset tools: 'data synth' writes the synthetic COCO-format person-keypoint dataset"


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 320x240, got {text!r}") from None
    return w, h


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``edgepose data`` and its actions."""
    actions = parser.add_subparsers(dest="data_action", metavar="ACTION")
    synth = actions.add_parser("synth", help="write the synthetic dataset",
                               description="Procedural human figures in cluttered scenes, written as COCO keypoints: "
                                           "DIR/annotations/person_keypoints_{train,val}.json, person_boxes_val.json "
                                           "(detector-style boxes), DIR/train/*.jpg, DIR/val/*.jpg.")
    synth.add_argument("--out", required=True, metavar="DIR", help="output folder (new or empty, or the same dataset)")
    synth.add_argument("--train", type=int, default=2000, metavar="N", help="training images (default 2000)")
    synth.add_argument("--val", type=int, default=200, metavar="M", help="validation images (default 200)")
    synth.add_argument("--seed", type=int, default=0, help="the same seed gives the same bytes (default 0)")
    synth.add_argument("--size", type=_size, default=(320, 240), metavar="WxH", help="image size (default 320x240)")
    synth.add_argument("--workers", type=int, help="processes (default: the CPU count, at most 8)")
    synth.add_argument("--force", action="store_true", help="replace a dataset made with other parameters in DIR")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.add_argument("--level", choices=("easy", "hard"), default="hard",
                       help="hard (default): 1-4 persons, clutter, distractors, occluders; easy: one large person")
    parser.set_defaults(data_usage=parser.format_usage)


def run(args: argparse.Namespace) -> int:
    """Generate (or find already generated) the dataset and print one summary line."""
    if getattr(args, "data_action", None) != "synth":
        print(args.data_usage().rstrip() + "\nedgepose data: choose an action, e.g. 'edgepose data synth --out DIR'")
        return 1
    from compress.data.synthetic import generate

    summary = generate(args.out, args.train, args.val, seed=args.seed, image_size=args.size,
                       progress=not args.quiet, workers=args.workers, force=args.force, level=args.level)
    if summary["skipped"]:
        print(f"{args.out} already holds this dataset (seed {args.seed}, {args.train} train + {args.val} val); "
              "nothing to do")
        return 0
    persons = summary["train"]["persons"] + summary["val"]["persons"]
    print(f"wrote {args.train} train + {args.val} val images ({persons} persons) to {args.out} in "
          f"{summary['seconds']:.1f} s ({summary['images_per_s']:.0f} images/s)")
    return 0
