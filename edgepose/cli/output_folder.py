"""The output of a run, checked before any work: a folder that exists (or can be made) and is writable, no folder
where a file will be written (or the other way round), and a lock so that two runs never write one folder at once.

    with output_folder("out", files=["out/predictions.json"], folders=["out/vis"]):
        ...  # a second run on "out" now fails at once: another edgepose run is writing to out (pid 1234)
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

from edgepose.errors import WriteError

LOCK_NAME = ".edgepose.lock"


def _probe(folder: str, target: str | None = None) -> None:
    """Create and drop a file in ``folder``: the one reliable test of writing (root, read-only mounts, ACLs)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        what = f"make folder {target} in {folder}" if target else f"write to {folder}"
        raise WriteError(f"cannot {what}: {exc.strerror or exc}") from exc


def _nearest_existing(path: str) -> str:
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    return existing


def check_file_target(path: str) -> None:
    """Raise WriteError unless ``path`` can be written as a file: not a folder, in a writable (or makeable) folder."""
    if os.path.isdir(path):
        raise WriteError(f"cannot write {path}: it is a folder")
    existing = _nearest_existing(os.path.dirname(os.path.abspath(path)))
    if not os.path.isdir(existing):
        raise WriteError(f"cannot write {path}: {existing} is a file")
    _probe(existing)


def check_folder(folder: str) -> None:
    """Raise WriteError unless ``folder`` is a writable folder, or could be made in a writable one."""
    existing = _nearest_existing(folder)
    if not os.path.isdir(existing):
        if existing == os.path.abspath(folder):
            raise WriteError(f"{folder} must be a folder, but it is a file")
        raise WriteError(f"cannot make folder {folder}: {existing} is a file")
    _probe(existing, None if existing == os.path.abspath(folder) else folder)


def _check_outputs(files: list[str], folders: list[str]) -> None:
    for folder in folders:
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise WriteError(f"{folder} must be a folder, but it is a file: move it away or pick another --out")
        if os.path.isdir(folder):
            _probe(folder)
    for path in files:
        if os.path.isdir(path):
            raise WriteError(f"cannot write {path}: it is a folder: move it away or pick another --out")


def _holder(path: str) -> str:
    with contextlib.suppress(OSError), open(path, encoding="utf-8") as fh:
        pid = fh.read().strip()
        if pid.isdigit():
            return f"pid {pid}"
    return "pid unknown"


def _lock(folder: str):
    """Open and lock ``folder``/LOCK_NAME (exclusive, non-blocking) and write our pid in it; the open file (None
    where the platform has no ``fcntl``: there runs are not locked)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    path = os.path.join(folder, LOCK_NAME)
    while True:
        try:
            handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the whole run
        except OSError as exc:
            raise WriteError(f"cannot write to {folder}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise WriteError(f"another edgepose run is writing to {folder} ({_holder(path)}): wait for it to finish "
                             "or pick another --out") from None
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a lock file that the previous holder removed while we waited to open it
            handle.truncate(0)
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            return handle
        handle.close()


@contextlib.contextmanager
def output_folder(folder: str, files: list[str] = (), folders: list[str] = ()) -> Iterator[None]:
    """Check ``folder`` and the ``files`` and ``folders`` a run will write in it, make it, and hold its lock while
    the block runs (WriteError at once if another run holds it). The lock file goes away afterwards, and so does
    ``folder`` when this call made it and nothing was written."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise WriteError(f"output folder {folder} is a file: pick another --out")
    check_folder(folder)  # a read-only or full disk, a file in the way of the folder or of one above it
    made = not os.path.exists(folder)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"cannot make output folder {folder}: {exc.strerror or exc}") from exc
    try:
        handle = _lock(folder)
        try:
            _check_outputs(list(files), list(folders))
            yield
        finally:
            if handle is not None:
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(folder, LOCK_NAME))  # still locked: a waiting run sees it gone and retries
                handle.close()
    finally:
        if made:
            with contextlib.suppress(OSError):
                os.rmdir(folder)  # only when empty: a run that failed before writing leaves nothing behind
