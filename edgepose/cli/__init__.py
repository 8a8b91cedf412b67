"""The ``edgepose`` command line. Library errors become one-line messages and exit code 2."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from importlib.metadata import entry_points

from edgepose import __version__
from edgepose.bench import cli as bench_cmd
from edgepose.cli import card_cmd, eval_cmd, predict_cmd
from edgepose.cli.interrupts import exit_code, signal_name
from edgepose.errors import EdgePoseError, MissingDependencyError
from edgepose.redact import redact

# subcommand name -> module with HELP, add_arguments(parser) and run(args) -> int; a literal dict.
COMMANDS = {"predict": predict_cmd, "eval": eval_cmd, "card": card_cmd, "bench": bench_cmd}

ENTRY_POINT_GROUP = "edgepose.commands"


def workstation_commands() -> dict[str, tuple[str, str]]:
    """verb -> (module, help) from the installed packages' ``edgepose.commands`` entry points.

    Each entry point is a light table (compress, deploy, quickstart): the runtime never names those packages, and a
    verb's module (torch and all) is imported only when that verb runs. A table that cannot load (a runtime-only
    install) simply adds no verbs.
    """
    commands: dict[str, tuple[str, str]] = {}
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            table = entry.load()
        except ImportError:
            continue
        commands.update({verb: (str(module), str(text)) for verb, (module, text) in table.items()})
    return commands


def _workstation_module(name: str, commands: dict[str, tuple[str, str]]):
    module_name, _ = commands[name]
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
    commands = workstation_commands()
    for name, (_, text) in commands.items():
        if name in COMMANDS:
            continue
        sub = subparsers.add_parser(name, help=text, description=text, add_help=name == load)
        if name == load:
            module = _workstation_module(name, commands)
            module.add_arguments(sub)
            sub.set_defaults(run=module.run)
    return parser


class _PrintHandler(logging.Handler):
    """Prints log records to the current ``sys.stdout`` (callers and pytest may swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record))


def show_artifact_lines() -> None:
    """Print the one line per written artifact (path, size, seconds) that deployment logs to ``edgepose.artifacts``."""
    log = logging.getLogger("edgepose.artifacts")
    if not any(isinstance(h, _PrintHandler) for h in log.handlers):
        log.addHandler(_PrintHandler())
        log.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    try:
        parser = build_parser(first if first in workstation_commands() else None)
    except MissingDependencyError as exc:
        print(f"edgepose {first}: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 1
    show_artifact_lines()
    try:
        return int(args.run(args) or 0)
    except EdgePoseError as exc:
        print(f"edgepose {args.command}: error: {redact(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C: 130; SIGTERM (where a command turns it into one): 143
        print(f"edgepose {args.command}: interrupted by {signal_name(exc)}", file=sys.stderr)
        return exit_code(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
