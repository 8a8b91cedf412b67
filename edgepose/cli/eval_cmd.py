"""``edgepose eval``: COCO keypoint AP of a predictions file with pycocotools."""

from __future__ import annotations

import argparse
import json

HELP = "COCO keypoint AP/AR of predictions against ground truth (pycocotools)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``edgepose eval``."""
    parser.add_argument("--gt", required=True, help="COCO keypoint annotations (person_keypoints_*.json)")
    parser.add_argument("--pred", required=True, help="COCO keypoint results (e.g. predictions.json)")
    parser.add_argument("--json", metavar="OUT", help="also write the 10 numbers as a JSON summary to OUT")


def run(args: argparse.Namespace) -> int:
    """Print pycocotools' summary; optionally write the JSON summary atomically (its target checked first)."""
    from edgepose.cli.output_folder import check_file_target
    from edgepose.coco.evaluate import coco_keypoint_eval
    from edgepose.io import atomic_write_text

    if args.json:
        check_file_target(args.json)
    stats = coco_keypoint_eval(args.gt, args.pred, verbose=True)
    if args.json:
        summary = {"gt": args.gt, "pred": args.pred, **stats}
        atomic_write_text(args.json, json.dumps(summary, indent=2) + "\n")
    return 0
