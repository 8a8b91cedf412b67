"""Logs that fit where they go: progress bars on a terminal, plain lines on a pipe or a file.

On a pipe or a file (CI, ``> log``) a tqdm bar would write thousands of carriage-return updates; there ``bar``
shows nothing and the caller's one line per epoch or stage (``line``) is the whole log.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any


def interactive(stream: Any = None) -> bool:
    """Whether ``stream`` (default: stderr, where tqdm draws) is a terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def bar(iterable: Iterable | None = None, *, desc: str, total: int | None = None, enabled: bool = True,
        unit: str = "it", leave: bool = False):
    """A tqdm progress bar when ``enabled`` and stderr is a terminal, else a silent pass-through with the same API."""
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, unit=unit, leave=leave, disable=not (enabled and interactive()))


def line(text: str, enabled: bool = True) -> None:
    """One log line (an epoch, a stage), flushed so that pipes see it at once."""
    if enabled:
        print(text, flush=True)
