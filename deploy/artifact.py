"""The one way deployment writes an artifact (ONNX export, quantized copy, TensorRT engine, Jetson bundle).

    with write_artifact("pose_int8.onnx", "INT8 ONNX", check=read_card) as tmp:
        ...write the model to tmp...

The block writes to a temporary path beside the target (same suffix, so writers and checks that go by extension
still work; a folder when ``folder=True``). When the block succeeds, ``check(tmp)`` runs (it raises to refuse the
file); then the temporary is renamed over the target in one step and one line is logged to the
``edgepose.artifacts`` logger: path, size, seconds. On any error the temporary is removed and the target is left as
it was (absent, or the previous complete file), so a crash or Ctrl-C never leaves half an artifact under its name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator

from edgepose.errors import InputError

LOG = logging.getLogger("edgepose.artifacts")


def size_of(path: str | os.PathLike) -> int:
    """Bytes in a file, or in all files under a folder."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)
    return os.path.getsize(path)


def human_size(size: int) -> str:
    """1536 -> '1.5 KiB'."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _temporary(path: str, folder: bool) -> str:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    base, suffix = os.path.splitext(os.path.basename(path))
    if folder:
        tmp = tempfile.mkdtemp(prefix=f".{base}.", suffix=".partial", dir=directory)
        os.chmod(tmp, 0o755)
        return tmp
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".partial{suffix}", dir=directory)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; artifacts are shared like any written file
    return tmp


def _remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


@contextlib.contextmanager
def write_artifact(path: str | os.PathLike, what: str, check: Callable[[str], object] | None = None,
                   folder: bool = False) -> Iterator[str]:
    """Yield a temporary path for ``path``; check it, rename it into place, log one line (see the module doc).

    ``folder``: the artifact is a directory; ``path`` must not exist or be an empty folder.
    """
    path = os.fspath(path)
    if folder and os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise InputError(f"{path} already exists and is not an empty folder: choose a new folder or remove it")
    if not folder and os.path.isdir(path):
        raise InputError(f"{path} is a folder: give a file name for the {what}")
    start = time.perf_counter()
    tmp = _temporary(path, folder)
    try:
        yield tmp
        if check is not None:
            check(tmp)
        if folder and os.path.isdir(path):
            os.rmdir(path)  # empty (checked above); os.replace cannot replace a folder
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    LOG.info("wrote %s (%s, %s, %.1f s)", path, what, human_size(size_of(path)), time.perf_counter() - start)
