"""File helpers: atomic writes (temp file, then rename) and checked image reading."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator

import cv2
import numpy as np

from edgepose.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``, on error remove it.

    The temp name keeps the suffix so writers that pick a format by extension (OpenCV) still work.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    base, suffix = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".tmp{suffix}", dir=directory)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; artefacts are meant to be shared like any written file
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes so that ``path`` is either the old file or the complete new one, never a part."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def read_json(path: str | os.PathLike, what: str = "JSON"):
    """Parse a JSON file, or raise InputError saying which ``what`` file is missing or malformed."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"{what} file not found: {path}")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{what} file {path} is not valid JSON: {exc}") from exc


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image as an (H, W, 3) uint8 BGR array, or raise InputError naming the file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"image not found: {path}")
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(f"cannot decode image {path}: the file is empty, truncated or not an image")
    return image


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Encode by the path's suffix and write atomically."""
    path = os.fspath(path)
    ok, buf = cv2.imencode(os.path.splitext(path)[1] or ".jpg", image)
    if not ok:
        raise InputError(f"OpenCV could not encode an image for {path}")
    atomic_write_bytes(path, buf.tobytes())
