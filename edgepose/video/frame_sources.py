"""Frame sources for streams: video files, image folders, camera indices, stream URLs, or any iterable of frames.

    source = open_frame_source("walk.mp4")       # or 0 (camera), "rtsp://...", "frames/", [frame, frame, ...]
    for frame in source:                          # Frame(index, time, image or None, error)
        ...
    source.close()

A frame that cannot be read (a corrupt image in a folder, the end of a truncated video) comes out as a ``Frame``
with ``image=None`` and the reason in ``error``, so a stream can skip it with a warning and go on. Timestamps are
in seconds: the frame index over the frame rate for files and folders (repeatable), the monotonic clock for
cameras and URLs (live).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from edgepose.errors import InputError
from edgepose.io import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, VIDEO_SUFFIXES, check_pixels, read_image
from edgepose.redact import redact


@dataclass
class Frame:
    """One frame of a source: its index, time in seconds, the BGR image (None when unreadable) and why not."""

    index: int
    time: float
    image: np.ndarray | None
    error: str | None = None


def is_camera(source: object) -> bool:
    """True for a camera index (an int, or a string of digits) or a stream URL (``scheme://...``)."""
    if isinstance(source, int) and not isinstance(source, bool):
        return True
    return isinstance(source, str) and (source.isdigit() or "://" in source)


def is_live(source: object) -> bool:
    """A camera or a live stream, timed by the clock; a URL of a video file (``http://host/clip.mp4``, ``file://``)
    is timed by its frame index like a local file."""
    if not is_camera(source):
        return False
    if not isinstance(source, str) or source.isdigit():
        return True
    path = source.split("?", 1)[0].lower()
    return not (path.startswith("file://") or path.endswith(VIDEO_SUFFIXES))


class FrameSource:
    """Iterates frames of one source; ``fps`` is the nominal rate (None when unknown), ``live`` for cameras,
    ``name`` the source with any URL's user:password and query masked, ``frame_count`` the number of frames a file
    or folder declares (None for live sources and iterables)."""

    def __init__(self, frames: Iterator[Frame], fps: float | None, live: bool, name: str, release=None,
                 frame_count: int | None = None) -> None:
        self._frames = frames
        self.fps = fps
        self.live = live
        self.name = redact(name)
        self.frame_count = frame_count
        self._release = release

    def __iter__(self) -> Iterator[Frame]:
        return self._frames

    def close(self) -> None:
        """Release the capture device or file (idempotent)."""
        release, self._release = self._release, None
        if release is not None:
            release()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _capture_frames(capture: cv2.VideoCapture, fps: float | None, live: bool, name: str) -> Iterator[Frame]:
    declared = 0 if live else int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)  # <= 0 where the file does not say
    index = 0
    while True:
        ok, image = capture.read()
        if not ok:
            if 0 < index < declared:  # a truncated or corrupt file: say so as a last, unreadable frame
                yield Frame(index, index / fps, None, f"video {name} ended after {index} of the {declared} frames "
                                                      "it declares: the file is truncated or corrupt")
            return
        t = time.monotonic() if live else index / fps
        yield Frame(index, t, image)
        index += 1


def _open_capture(source: int | str, default_fps: float, max_pixels: int | None) -> FrameSource:
    target = int(source) if isinstance(source, int) or source.isdigit() else source
    live = is_live(source)
    capture = cv2.VideoCapture(target)
    what = "camera" if isinstance(target, int) else ("stream" if live else "video")
    if not capture.isOpened():
        capture.release()
        raise InputError(f"cannot open {what} {redact(repr(source))}: not connected, missing codec, corrupt or "
                         "truncated")
    try:
        size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        check_pixels(size, f"{what} {redact(source)}", max_pixels)
    except InputError:
        capture.release()
        raise
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else None
    fps = fps or (None if live else default_fps)
    declared = None if live else int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) or None
    return FrameSource(_capture_frames(capture, fps, live, redact(source)), fps, live, str(source), capture.release,
                       declared)


def _folder_frames(paths: list[str], fps: float, max_pixels: int | None) -> Iterator[Frame]:
    for index, path in enumerate(paths):
        try:
            yield Frame(index, index / fps, read_image(path, max_pixels))
        except InputError as exc:
            yield Frame(index, index / fps, None, str(exc))


def _iterable_frames(frames: Iterable, fps: float) -> Iterator[Frame]:
    for index, image in enumerate(frames):
        yield Frame(index, index / fps, image)


def open_frame_source(source: object, fps: float = 30.0, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> FrameSource:
    """A FrameSource for a video file, an image folder (sorted), a camera index or URL, or an iterable of arrays.

    ``fps`` sets the timestamps of folders and iterables (and of videos whose rate OpenCV cannot read). A missing
    path, an unopenable video/camera or one whose frames exceed ``max_pixels`` (None: no limit) raises InputError;
    an image of a folder over the limit is an unreadable frame."""
    if fps <= 0:
        raise InputError(f"fps must be positive, got {fps}")
    if is_camera(source):
        return _open_capture(source, fps, max_pixels)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if os.path.isdir(path):
            names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_SUFFIXES))
            if not names:
                raise InputError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            frames = _folder_frames([os.path.join(path, n) for n in names], fps, max_pixels)
            return FrameSource(frames, fps, False, path, frame_count=len(names))
        if not os.path.exists(path):
            raise InputError(f"input not found: {path}")
        if not path.lower().endswith(VIDEO_SUFFIXES):
            raise InputError(f"{path} is not a video ({', '.join(VIDEO_SUFFIXES)}); give a folder for images")
        return _open_capture(path, fps, max_pixels)
    if isinstance(source, np.ndarray):
        raise InputError("a single array is one frame, not a stream: call the estimator on it, or pass [frame]")
    if isinstance(source, Iterable):
        inner = iter(source)
        frames = _iterable_frames(inner, fps)

        def release() -> None:  # run the caller's generator's own clean-up (its finally) now, not at GC
            frames.close()
            close = getattr(inner, "close", None)
            if callable(close):
                close()

        return FrameSource(frames, fps, False, type(source).__name__, release)
    raise InputError(f"cannot stream from {type(source).__name__}: give a video path, an image folder, a camera "
                     f"index, a URL, or an iterable of (H, W, 3) uint8 BGR frames")
