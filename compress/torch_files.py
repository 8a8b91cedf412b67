"""Read torch files a user hands us with ``weights_only=True``: tensors and plain containers, never code.

A torch file is a pickle, and full unpickling runs whatever callable it names (``os.system``, a library class)
while it is read. ``load_torch_file`` refuses such a file with one line naming the objects, before any is built.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Sequence
from typing import Any

import torch

from edgepose.errors import CheckpointError


def load_torch_file(path: str | os.PathLike, what: str = "checkpoint", hint: str = "",
                    allowed: Sequence = ()) -> Any:
    """``torch.load`` with ``weights_only=True``: tensors, numbers, strings and containers, nothing else.

    A file holding other Python objects (a pickled ``os.system`` call, a class of some library) raises
    CheckpointError naming them before any is built; ``hint`` is appended to that message. ``allowed``: further
    globals the caller's format needs (``torch.serialization.safe_globals`` entries). A missing, truncated or
    non-torch file raises CheckpointError too.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{what} not found: {path}")
    with torch.serialization.safe_globals(list(allowed)):
        return _load(path, what, hint)


def _load(path: str, what: str, hint: str) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        names = _refused_globals(path, exc)
        if names:
            raise CheckpointError(f"{path} contains Python objects that are not allowed ({', '.join(names)}): "
                                  f"refusing to unpickle it{hint}") from exc
        raise CheckpointError(f"cannot read {what} {path} (truncated, or not a plain torch file): "
                              f"{_unpickler_reason(exc)}") from exc
    except Exception as exc:  # torch raises several types for truncated/corrupt zip archives
        raise CheckpointError(f"cannot read {what} {path} (truncated or not a torch file): {first_line(exc)}") from exc


def _refused_globals(path: str, exc: Exception) -> list[str]:
    """The globals (functions, classes) a torch file names that weights-only loading refuses; read, never run."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # a legacy (non-zip) file: the unpickler's message names the first one
        names = []
    return sorted(set(names)) or re.findall(r"GLOBAL ([\w.]+)", str(exc))[:1]


def _unpickler_reason(exc: Exception) -> str:
    """The line of torch's many-line weights-only error that says what was refused."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    marker = next((i for i, line in enumerate(lines) if "WeightsUnpickler error" in line), None)
    if marker is not None and marker + 1 < len(lines):
        return lines[marker + 1]
    return first_line(exc)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
