"""Expand command-line inputs (images, folders, videos) into a list of items to process."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from edgepose.errors import InputError
from edgepose.io import IMAGE_SUFFIXES, VIDEO_SUFFIXES


@dataclass(frozen=True)
class Item:
    """One input: an image file or a video file."""

    path: str
    kind: str  # "image" | "video" | "camera" (a camera index or a stream URL)


def collect_inputs(paths: list[str]) -> list[Item]:
    """Images, folders of images (sorted, not recursive), videos, camera indices and stream URLs -> items; bad
    paths raise InputError."""
    from edgepose.frame_sources import is_camera

    items: list[Item] = []
    for path in paths:
        if is_camera(path) and not os.path.exists(path):
            items.append(Item(path, "camera"))
        elif os.path.isdir(path):
            names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_SUFFIXES))
            if not names:
                raise InputError(f"folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            items += [Item(os.path.join(path, n), "image") for n in names]
        elif not os.path.exists(path):
            raise InputError(f"input not found: {path}")
        elif path.lower().endswith(VIDEO_SUFFIXES):
            items.append(Item(path, "video"))
        elif path.lower().endswith(IMAGE_SUFFIXES):
            items.append(Item(path, "image"))
        else:
            raise InputError(f"cannot tell what {path} is: use an image ({', '.join(IMAGE_SUFFIXES)}), a folder or "
                             f"a video ({', '.join(VIDEO_SUFFIXES)})")
    return items


def video_frames(path: str) -> tuple[Iterator[np.ndarray], float, tuple[int, int]]:
    """Open a video: (frame iterator, fps, (width, height)); an unreadable file raises InputError.

    A video that stops decoding before the frame count its container declares (a truncated or corrupt file) ends
    the iterator with a RuntimeWarning saying how many frames were read.
    """
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        if isinstance(path, str) and "://" not in path and "%" not in path and not os.path.exists(path):
            raise InputError(f"video not found: {path}")
        raise InputError(f"cannot open video {path}: missing codec, corrupt or truncated file")
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    declared = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)  # 0 or negative where the container does not say
    ok, first = capture.read()
    if not ok:
        capture.release()
        raise InputError(f"video {path} has no readable frame (empty, corrupt or truncated)")

    def frames() -> Iterator[np.ndarray]:
        read = 1
        try:
            yield first
            while True:
                ok, frame = capture.read()
                if not ok:
                    if 0 < read < declared:
                        warnings.warn(f"video {path} ended after {read} of the {declared} frames it declares: the "
                                      "file is truncated or corrupt", RuntimeWarning, stacklevel=2)
                    return
                read += 1
                yield frame
        finally:
            capture.release()

    return frames(), float(fps), size
