"""Ctrl-C and SIGTERM for the command line: both raise a KeyboardInterrupt that knows its signal, so a run can write
what it finished, say how far it got and exit 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""

from __future__ import annotations

import signal
import threading


class Interrupted(KeyboardInterrupt):
    """A run stopped by ``signum`` (SIGINT: Ctrl-C; SIGTERM: docker stop, systemd, kill)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


def signum_of(exc: BaseException) -> int:
    """The signal behind a KeyboardInterrupt: its ``signum``, or SIGINT for a plain one (Python's Ctrl-C)."""
    return int(getattr(exc, "signum", signal.SIGINT))


def exit_code(exc: BaseException) -> int:
    """The shell's exit status of a process ended by the signal behind ``exc``: 128 + its number."""
    return 128 + signum_of(exc)


def signal_name(exc: BaseException) -> str:
    """``SIGINT`` or ``SIGTERM``."""
    return signal.Signals(signum_of(exc)).name


def _raise_interrupted(signum, frame) -> None:
    raise Interrupted(signum)


def raise_on_sigterm() -> None:
    """Make SIGTERM raise Interrupted(SIGTERM) in the main thread, as Ctrl-C raises KeyboardInterrupt."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupted)
