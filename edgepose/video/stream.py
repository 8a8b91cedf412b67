"""Streaming pose estimation: decode, detection and pose inference overlapped in threads with bounded queues.

    with estimator.stream("walk.mp4", detect_every=3, smoothing={"min_cutoff": 1.0, "beta": 0.01}) as stream:
        for result in stream:                      # StreamResult, in frame order
            result.poses.xy, result.poses.ids      # ids: per-person track ids (-1 until confirmed)

Three worker threads: the reader decodes frames, the detector finds persons on every ``detect_every``-th frame,
and the pose stage (which also runs the detector on a frame where every person was lost) estimates keypoints,
tracks identities and smooths. On frames without detection, each tracked person's box comes from its keypoints of
the previous frame (the usual top-down trick). Queues hold at most ``queue_size`` items each, so a slow consumer
slows the reader down instead of growing memory. A bad frame (unreadable, wrong shape or dtype, NaN model outputs)
is skipped with a ``StreamWarning`` and the stream goes on; any other error stops the stream and is raised in the
consumer's thread.
Breaking out of the loop, ``close()`` or leaving the ``with`` block stops the threads and releases the source.
"""

from __future__ import annotations

import queue
import threading
import time
import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from edgepose.errors import InputError, OutputError
from edgepose.io import DEFAULT_MAX_PIXELS
from edgepose.poses import Poses
from edgepose.video.frame_sources import open_frame_source
from edgepose.video.smoothing import SmoothingSettings
from edgepose.video.tracking import PoseTracker, TrackerSettings


class StreamWarning(UserWarning):
    """A frame of a stream was skipped; the message says which and why."""


@dataclass(frozen=True)
class StreamOptions:
    """How a stream runs. ``tracker`` holds PoseTracker settings (None: the defaults), ``smoothing`` One-Euro
    settings per track (None: raw keypoints); a plain dict of either is converted to its settings class here. A
    person's box is carried to the next frame when at least ``carry_min_keypoints`` keypoints score
    ``carry_threshold``; it is their extent grown by ``carry_expand``. ``fps`` times folders and iterables;
    ``max_frames`` stops early; ``keep_frames`` puts each frame in its result (for drawing); frames (video size or
    folder images) over ``max_pixels`` are refused before decoding (None: no limit)."""

    detect_every: int = 1
    queue_size: int = 2
    track: bool = True
    tracker: TrackerSettings | None = None
    smoothing: SmoothingSettings | None = None
    carry_threshold: float = 0.3
    carry_min_keypoints: int = 3
    carry_expand: float = 1.15
    fps: float = 30.0
    max_frames: int | None = None
    keep_frames: bool = True
    max_pixels: int | None = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if self.detect_every < 1 or self.queue_size < 1 or self.carry_expand < 1 or self.carry_min_keypoints < 2:
            raise InputError(f"stream needs detect_every >= 1, queue_size >= 1, carry_expand >= 1 and "
                             f"carry_min_keypoints >= 2; got {self.detect_every}, {self.queue_size}, "
                             f"{self.carry_expand}, {self.carry_min_keypoints}")
        if self.smoothing is not None and not self.track:
            raise InputError("smoothing is per track: it needs track=True (or drop smoothing)")
        if self.max_frames is not None and self.max_frames < 1:
            raise InputError(f"max_frames must be >= 1 or None, got {self.max_frames}")
        if self.max_pixels is not None and self.max_pixels < 1:
            raise InputError(f"max_pixels must be >= 1 or None, got {self.max_pixels}")
        object.__setattr__(self, "tracker", TrackerSettings.of(self.tracker))
        object.__setattr__(self, "smoothing", SmoothingSettings.of(self.smoothing))


@dataclass
class StreamResult:
    """One frame's poses (``poses.ids`` set when tracking), its index and time (s), the frame itself (when kept),
    whether the detector ran on it, and the stream's delivered frames per second so far (over the last 30)."""

    index: int
    time: float
    poses: Poses
    frame: np.ndarray | None
    detected: bool
    fps: float


@dataclass
class _Skipped:
    index: int
    reason: str


@dataclass
class _Failed:
    error: BaseException


_END = object()
JOIN_SECONDS = 5.0  # how long close() waits for each worker (a blocked camera read can take longer)


def boxes_from_keypoints(xy: np.ndarray, scores: np.ndarray, frame_shape: tuple[int, ...], threshold: float,
                         min_keypoints: int, expand: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (M,4 xyxy) around each person's confident keypoints, grown by ``expand`` about their centre and clipped
    to the frame, and the indices (M,) of the persons kept (those with ``min_keypoints`` confident keypoints and a
    box of at least 2 px each way)."""
    height, width = frame_shape[:2]
    boxes, keep = [], []
    for i, (points, conf) in enumerate(zip(xy, scores, strict=True)):
        good = points[conf >= threshold]
        if len(good) < min_keypoints:
            continue
        lo, hi = good.min(0), good.max(0)
        centre, half = (lo + hi) / 2, (hi - lo) / 2 * expand
        box = np.clip(np.concatenate([centre - half, centre + half]), 0, [width - 1, height - 1, width - 1, height - 1])
        if box[2] - box[0] >= 2 and box[3] - box[1] >= 2:
            boxes.append(box)
            keep.append(i)
    return np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(keep, np.int64)


class PoseStream:
    """Iterable of StreamResult over a source; see the module docstring. Iterate once; ``close()`` is idempotent."""

    def __init__(self, estimator, source: object, options: StreamOptions | None = None) -> None:
        self.estimator = estimator
        self.options = options or StreamOptions()
        if getattr(estimator, "detector", None) is None:
            raise InputError("a stream needs a person detector: PoseEstimator(model, detector='yolox.onnx')")
        self.source = open_frame_source(source, self.options.fps, self.options.max_pixels)
        self.stats = {"frames": 0, "skipped": 0, "detector_runs": 0}
        self._stop = threading.Event()
        self._count_lock = threading.Lock()
        size = self.options.queue_size
        self._decoded: queue.Queue = queue.Queue(size)
        self._detected: queue.Queue = queue.Queue(size)
        self._results: queue.Queue = queue.Queue(size)
        self._threads: list[threading.Thread] = []
        self._started = False

    # -- plumbing -------------------------------------------------------------------------------------------------
    def _put(self, box: queue.Queue, item) -> bool:
        """Put unless the stream is stopping; False when it is."""
        while not self._stop.is_set():
            try:
                box.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _stage(self, name: str, work, outbox: queue.Queue) -> threading.Thread:
        def run() -> None:
            try:
                work()
            except BaseException as exc:  # handed to the consumer, which raises it
                self._put(outbox, _Failed(exc))
            finally:
                self._put(outbox, _END)

        thread = threading.Thread(target=run, name=f"edgepose-stream-{name}", daemon=True)
        self._threads.append(thread)
        return thread

    def _inbox(self, box: queue.Queue, outbox: queue.Queue) -> Iterator:
        """Items of ``box`` until its end; failures and skips are passed on to ``outbox`` untouched."""
        while not self._stop.is_set():
            try:
                item = box.get(timeout=0.05)
            except queue.Empty:
                continue
            if item is _END:
                return
            if isinstance(item, (_Failed, _Skipped)):
                if not self._put(outbox, item):
                    return
                continue
            yield item

    # -- stages ---------------------------------------------------------------------------------------------------
    def _detect_persons(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The estimator's detector on ``image`` (it serialises detectors that are not thread-safe), counted."""
        found = self.estimator.detect(image)
        with self._count_lock:
            self.stats["detector_runs"] += 1
        return found

    def _read(self) -> None:
        count, limit = 0, self.options.max_frames
        try:
            for frame in self.source:
                if self._stop.is_set() or not self._put(self._decoded, frame):
                    return
                count += 1
                if limit is not None and count >= limit:
                    return
            if count == 0:
                raise InputError(f"{self.source.name} gave no readable frame (empty, corrupt or truncated)")
        finally:
            self.source.close()

    def _detect(self) -> None:
        every, out = self.options.detect_every, self._detected
        for frame in self._inbox(self._decoded, out):
            if frame.image is None:
                item = _Skipped(frame.index, frame.error or "the source gave None instead of an (H, W, 3) uint8 image")
            else:
                try:  # the estimator validates the frame (here on detection frames, in the pose stage always)
                    found = self._detect_persons(frame.image) if frame.index % every == 0 else None
                    item = (frame, found)
                except (InputError, OutputError) as exc:
                    item = _Skipped(frame.index, str(exc))
            if not self._put(out, item):
                return

    def _pose(self) -> None:
        opts, out = self.options, self._results
        tracker = PoseTracker.from_settings(opts.tracker, self.estimator.sigmas, opts.smoothing) if opts.track else None
        carried = (np.zeros((0, 4)), np.zeros(0, np.float32))
        last_time = None
        for frame, found in self._inbox(self._detected, out):
            if last_time is not None and frame.time <= last_time:  # a live clock that did not advance
                frame.time = last_time + 1e-6
            try:
                if found is None and len(carried[0]) == 0:  # everyone was lost: detect now, not k frames later
                    found = self._detect_persons(frame.image)
                boxes, scores = found if found is not None else carried
                poses = self.estimator(frame.image, boxes, scores, nms=True)
            except (InputError, OutputError) as exc:
                self._put(out, _Skipped(frame.index, str(exc)))
                continue
            last_time = frame.time
            carry, keep = boxes_from_keypoints(poses.xy, poses.scores, frame.image.shape, opts.carry_threshold,
                                               opts.carry_min_keypoints, opts.carry_expand)
            carried = (carry, poses.box_scores[keep])
            if tracker is not None:
                ids, xy = tracker.update(poses.xy, poses.scores, poses.boxes, frame.time)
                poses = replace(poses, xy=xy.astype(np.float32), ids=ids)
            result = StreamResult(frame.index, frame.time, poses, frame.image if opts.keep_frames else None,
                                  found is not None, 0.0)
            if not self._put(out, result):
                return

    # -- consumer -------------------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[StreamResult]:
        if self._started:
            raise InputError("a stream can be iterated once: call estimator.stream(source) again")
        if self._stop.is_set():
            raise InputError("this stream was closed: call estimator.stream(source) again")
        self._started = True
        return self._consume()

    def _next_result(self):
        """The next item from the pose stage; _END once the workers are gone and their queue is drained."""
        while True:
            try:
                return self._results.get(timeout=0.1)
            except queue.Empty:
                if not any(t.is_alive() for t in self._threads):
                    try:  # a worker may have put its last items between the timeout and the check
                        return self._results.get_nowait()
                    except queue.Empty:
                        return _END

    def _consume(self) -> Iterator[StreamResult]:
        # The threads start at the first next(), inside this generator, so its finally always stops them.
        for name, work, outbox in (("read", self._read, self._decoded), ("detect", self._detect, self._detected),
                                   ("pose", self._pose, self._results)):
            self._stage(name, work, outbox).start()
        times: deque[float] = deque(maxlen=30)
        try:
            while True:
                item = self._next_result()
                if item is _END:
                    return
                if isinstance(item, _Failed):
                    raise item.error
                if isinstance(item, _Skipped):
                    self.stats["skipped"] += 1
                    warnings.warn(StreamWarning(f"frame {item.index} skipped: {item.reason}"), stacklevel=2)
                    continue
                times.append(time.perf_counter())
                if len(times) > 1:
                    item.fps = (len(times) - 1) / max(times[-1] - times[0], 1e-9)
                self.stats["frames"] += 1
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Stop the threads, drop queued frames and release the source."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=JOIN_SECONDS)
        for box in (self._decoded, self._detected, self._results):
            while True:
                try:
                    box.get_nowait()
                except queue.Empty:
                    break
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:  # e.g. the reader blocked in a camera read: it releases the source itself when the read returns
            warnings.warn(StreamWarning(f"stream threads {alive} still busy after {JOIN_SECONDS} s; they stop and "
                                        "release the source when their current call returns"), stacklevel=2)
        else:
            self.source.close()
        self._threads = [t for t in self._threads if t.is_alive()]

    def __enter__(self) -> PoseStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
