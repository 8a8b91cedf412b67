"""``edgepose verify A B``: do two forms of one model (checkpoint, ONNX, engine, torch program) agree?"""

from __future__ import annotations

import argparse
import json

HELP = "check that two forms of a model (checkpoint / ONNX / engine / torch program) give the same outputs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``edgepose verify``."""
    from deploy.export_cli import add_mmpose_arguments

    parser.add_argument("reference", help="the reference form (e.g. the training checkpoint, or MMPose's with --arch)")
    parser.add_argument("candidate", help="the form to check (e.g. the exported ONNX or engine)")
    parser.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp32",
                        help="tolerances for the candidate's precision")
    parser.add_argument("--count", type=int, default=8, help="person crops to compare on")
    parser.add_argument("--json", metavar="OUT", help="also write the report as JSON")
    add_mmpose_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Compare; exit status 1 when they diverge."""
    from dataclasses import asdict

    from deploy.verify import LoadedModel, Tolerance, verify
    from edgepose.io import atomic_write_text

    reference = args.reference
    if args.arch is not None:  # an MMPose checkpoint: built, loaded and carded as `edgepose export --arch` does
        from deploy.export_cli import load_source

        args.checkpoint = args.reference
        model, card = load_source(args)
        reference = LoadedModel(model, card, args.reference)
    report = verify(reference, args.candidate, Tolerance.for_precision(args.precision), args.count)
    print(report.summary())
    if args.json:
        atomic_write_text(args.json, json.dumps({**asdict(report), "passed": report.passed}, indent=2) + "\n")
    return 0 if report.passed else 1
