"""The ``edgepose`` command line. Library errors become one-line messages and exit code 2."""

from __future__ import annotations

import argparse
import importlib
import sys

from edgepose import __version__
from edgepose.bench import cli as bench_cmd
from edgepose.cli import card_cmd, eval_cmd, predict_cmd
from edgepose.errors import EdgePoseError, MissingDependencyError

# subcommand name -> module with HELP, add_arguments(parser) and run(args) -> int; a literal dict.
COMMANDS = {"predict": predict_cmd, "eval": eval_cmd, "card": card_cmd, "bench": bench_cmd}

# Workstation commands live in the torch-side packages. The runtime never imports them: only running one of these
# commands loads its module (so `edgepose --help` and the runtime stay free of torch).
WORKSTATION_COMMANDS = {
    "train": ("compress.train", "train a pose model from a YAML config (DDP under torchrun)"),
    "distill": ("compress.cli_distill", "train a student from a teacher checkpoint (Fast Pose Distillation)"),
    "evaluate": ("compress.cli_evaluate", "COCO keypoint AP and PCK of a training checkpoint"),
    "data": ("compress.cli_data", "make datasets: 'edgepose data synth --out DIR --train N --val M'"),
    "quantize": ("compress.cli_quantize", "INT8 (calibrated QDQ) or FP16 copy of an ONNX pose model, card kept"),
    "prune": ("compress.prune_job", "prune a checkpoint to a FLOPs target, fine-tuning with distillation"),
    "export": ("deploy.cli_export", "export a checkpoint to ONNX (card embedded, parity-checked) or a bundle"),
    "verify": ("deploy.cli_verify", "check that two forms of a model (checkpoint / ONNX / engine) agree"),
    "build-engine": ("deploy.cli_build_engine", "build a TensorRT engine from an ONNX model (profiles, cache, DLA)"),
    "quickstart": ("compress.quickstart", "the whole job on the synthetic set: train, distil, prune, quantize, report"),
}


def _workstation_module(name: str):
    module_name, _ = WORKSTATION_COMMANDS[name]
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise MissingDependencyError(
            f"'edgepose {name}' needs the training tools ({exc.name or exc}): pip install 'edgepose[train]'"
        ) from exc


def build_parser(load: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser; the workstation command ``load`` (if any) gets its full arguments."""
    parser = argparse.ArgumentParser(prog="edgepose", description="Fast, trustworthy top-down pose estimation.")
    parser.add_argument("--version", action="version", version=f"edgepose {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    for name, (_, text) in WORKSTATION_COMMANDS.items():
        sub = subparsers.add_parser(name, help=text, description=text, add_help=name == load)
        if name == load:
            module = _workstation_module(name)
            module.add_arguments(sub)
            sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    try:
        parser = build_parser(first if first in WORKSTATION_COMMANDS else None)
    except MissingDependencyError as exc:
        print(f"edgepose {first}: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 1
    try:
        return int(args.run(args) or 0)
    except EdgePoseError as exc:
        print(f"edgepose {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgepose: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
