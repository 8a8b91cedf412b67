"""File helpers: atomic writes (temp file, then rename), checked JSON and image reading (sizes checked from the
header before decoding)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator

import cv2
import numpy as np

from edgepose.errors import InputError, WriteError
from edgepose.image_size import DEFAULT_MAX_PIXELS, image_size

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``, on error remove it.

    The temp name keeps the suffix so writers that pick a format by extension (OpenCV) still work. An OSError while
    making the temp file or renaming it (a read-only folder, a full disk, a folder in the way) becomes a one-line
    WriteError naming ``path``.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    base, suffix = os.path.splitext(os.path.basename(path))
    tmp = None
    try:  # the temp file is made inside the try: a Ctrl-C at any point leaves no temp file behind
        with writing(path):
            os.makedirs(directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".tmp{suffix}", dir=directory)
            os.close(fd)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; artefacts are meant to be shared like any written file
        yield tmp
        with writing(path):
            os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
        raise


@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Turn an OSError raised inside the block into a one-line WriteError saying ``path`` cannot be written."""
    try:
        yield
    except WriteError:
        raise
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if isinstance(exc, IsADirectoryError) or os.path.isdir(path):
            reason = "a folder is in the way"
        raise WriteError(f"cannot write {os.fspath(path)}: {reason}") from exc


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes so that ``path`` is either the old file or the complete new one, never a part."""
    with atomic_path(path) as tmp, writing(path), open(tmp, "wb") as fh:
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
    except OSError as exc:
        raise InputError(f"cannot read {what} file {path}: {exc.strerror or exc}") from exc


def check_pixels(size: tuple[int, int], what: str, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
    """Raise InputError when a ``size`` = (width, height) image or frame exceeds ``max_pixels`` (None: no limit)."""
    width, height = size
    if max_pixels is not None and width * height > max_pixels:
        raise InputError(f"{what} is {width}x{height} ({width * height / 1e6:.1f} megapixels), over the limit of "
                         f"{max_pixels} pixels: raise it with --max-pixels (max_pixels=) if the memory is there")


def read_image(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image as an (H, W, 3) uint8 BGR array, or raise InputError naming the file.

    The size is read from the file header first: an image over ``max_pixels`` (None: no limit) is refused before
    any pixel is decoded, as is a file whose header is not JPEG, PNG, BMP, WebP, TIFF, GIF or PNM."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"image not found: {path}")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"cannot read image {path}: {exc.strerror or exc}") from exc
    size = image_size(data)
    if size is not None:
        check_pixels(size, f"image {path}", max_pixels)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if size is not None else None
    if image is None:
        raise InputError(f"cannot decode image {path}: the file is empty, truncated or not an image")
    check_pixels(image.shape[1::-1], f"image {path}", max_pixels)  # the header and the decoder agree, normally
    return image


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Encode by the path's suffix and write atomically."""
    path = os.fspath(path)
    ok, buf = cv2.imencode(os.path.splitext(path)[1] or ".jpg", image)
    if not ok:
        raise InputError(f"OpenCV could not encode an image for {path}")
    atomic_write_bytes(path, buf.tobytes())
