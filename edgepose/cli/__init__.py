"""The ``edgepose`` command line. Library errors become one-line messages and exit code 2."""

from __future__ import annotations

import argparse
import sys

from edgepose import __version__
from edgepose.cli import card_cmd, eval_cmd, predict_cmd
from edgepose.errors import EdgePoseError

# subcommand name -> module with add_arguments(parser) and run(args) -> int; a literal dict.
COMMANDS = {"predict": predict_cmd, "eval": eval_cmd, "card": card_cmd}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="edgepose", description="Fast, trustworthy top-down pose estimation.")
    parser.add_argument("--version", action="version", version=f"edgepose {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
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
