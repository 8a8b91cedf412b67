"""An annotated mp4 written under a temp name and renamed into place only when it is whole.

OpenCV's VideoWriter only warns when the disk fills up; here a failed frame write (OpenCV 5 returns False) stops the
run at once, and at the end the file must open again with every frame written (older OpenCV returns nothing from
``write``), else WriteError and no file under the final name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

import cv2
import numpy as np

from edgepose.errors import WriteError
from edgepose.io import writing


class VideoFile:
    """Frames -> an mp4v video at a temp path beside ``path``; opened at the first frame (its size sets the video's)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.tmp: str | None = None
        self.frames = 0
        self._writer = None

    def _open(self, size: tuple[int, int], fps: float) -> None:
        folder = os.path.dirname(os.path.abspath(self.path))
        base = os.path.splitext(os.path.basename(self.path))[0]
        with writing(self.path):
            fd, self.tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp.mp4", dir=folder)
            os.close(fd)
            os.chmod(self.tmp, 0o644)
        self._writer = cv2.VideoWriter(self.tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not self._writer.isOpened():
            raise WriteError(f"cannot write {self.path}: OpenCV cannot open an mp4v video writer there")

    def write(self, image: np.ndarray, fps: float) -> None:
        """Append one BGR frame; WriteError when the encoder reports a failed write (a full disk)."""
        if self._writer is None:
            self._open((image.shape[1], image.shape[0]), fps)
        if self._writer.write(image) is False:
            raise WriteError(f"cannot write {self.path}: writing frame {self.frames} failed (disk full?)")
        self.frames += 1

    def release(self) -> None:
        """Close the encoder (idempotent)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.release()

    def check(self) -> None:
        """WriteError unless the finished temp file opens and holds every frame written."""
        capture = cv2.VideoCapture(self.tmp)
        try:
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
        finally:
            capture.release()
        if count != self.frames:
            raise WriteError(f"cannot write {self.path}: the finished video holds {max(count, 0)} of the {self.frames} "
                             "frames written (disk full?)")


@contextlib.contextmanager
def video_output(path: str) -> Iterator[VideoFile]:
    """A VideoFile for ``path``; on leaving the block it is checked and renamed over ``path`` when it holds at least
    one frame, and removed otherwise (an error, no frames)."""
    video = VideoFile(path)
    try:
        yield video
        video.release()
        if video.frames:
            video.check()
            with writing(path):
                os.replace(video.tmp, path)
    finally:
        video.release()
        if video.tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(video.tmp)
