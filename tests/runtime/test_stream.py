"""estimator.stream: same results as the obvious serial loop, detector every k-th frame, bad frames skipped with a
warning, errors raised in the consumer, bounded queues, threads and sources released."""

from __future__ import annotations

import queue
import threading
import time
import warnings

import cv2
import numpy as np
import pytest

from edgepose.card import ModelCard
from edgepose.errors import InputError
from edgepose.pipeline import PoseEstimator
from edgepose.video.smoothing import SmoothingSettings
from edgepose.video.stream import StreamOptions, StreamWarning, boxes_from_keypoints
from edgepose.video.tracking import PoseTracker, TrackerSettings
from tests.helpers.onnx_builders import conv_heatmap_model

CARD = ModelCard(input_size=(48, 64), mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), color="rgb",
                 codec="msra", heatmap_size=(12, 16), decode="dark")
BOXES = np.array([[10, 20, 70, 150], [90, 30, 150, 160]], float)


class StubDetector:
    """Fixed boxes, drifting ``drift`` pixels per call; counts calls."""

    def __init__(self, boxes=BOXES, fail_at: int | None = None, drift: float = 1.0):
        self.boxes, self.calls, self.fail_at, self.drift = boxes, 0, fail_at, drift

    def __call__(self, frame):
        self.calls += 1
        if self.fail_at is not None and self.calls > self.fail_at:
            raise RuntimeError("detector exploded")
        return self.boxes + self.calls * self.drift, np.linspace(0.9, 0.8, len(self.boxes)).astype(np.float32)


def frames(n: int, seed: int = 0) -> list[np.ndarray]:
    """A moving textured scene: each frame shifts the previous one by a pixel."""
    base = np.random.default_rng(seed).integers(0, 256, (180, 240, 3), dtype=np.uint8)
    base = cv2.GaussianBlur(base, (7, 7), 2)
    return [np.roll(base, i, axis=1).copy() for i in range(n)]


@pytest.fixture()
def model(tmp_path):
    return conv_heatmap_model(tmp_path / "m.onnx", CARD, input_size=(48, 64))


def stream_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("edgepose-stream")]


def serial(model, images, detect_every, track):
    """The obvious loop the stream must reproduce: detect on every k-th frame, else carry boxes from keypoints."""
    detector = StubDetector()
    est = PoseEstimator(model, card=CARD)
    tracker = PoseTracker(sigmas=est.sigmas) if track else None
    carried = (np.zeros((0, 4)), np.zeros(0, np.float32))
    out = []
    for i, image in enumerate(images):
        found = i % detect_every == 0 or len(carried[0]) == 0
        boxes, scores = detector(image) if found else carried
        poses = est(image, boxes, scores, nms=True)
        carry, keep = boxes_from_keypoints(poses.xy, poses.scores, image.shape, 0.3, 3, 1.15)
        carried = (carry, poses.box_scores[keep])
        ids = None
        if tracker is not None:
            ids, xy = tracker.update(poses.xy, poses.scores, poses.boxes, i / 30.0)
            poses.xy = xy.astype(np.float32)
        out.append((poses, ids, found))
    return out


@pytest.mark.parametrize("detect_every,track", [(1, False), (3, True)])
def test_stream_matches_serial_loop(model, detect_every, track):
    images = frames(10)
    detector = StubDetector()
    est = PoseEstimator(model, card=CARD, detector=detector)
    results = list(est.stream(images, detect_every=detect_every, track=track))
    reference = serial(model, images, detect_every, track)
    assert [r.index for r in results] == list(range(10))
    assert np.allclose([r.time for r in results], np.arange(10) / 30.0)
    for result, (poses, ids, found) in zip(results, reference, strict=True):
        assert result.detected == found
        np.testing.assert_allclose(result.poses.xy, poses.xy, atol=1e-4)
        np.testing.assert_allclose(result.poses.boxes, poses.boxes, atol=1e-4)
        if track:
            assert result.poses.ids.tolist() == ids.tolist()
        else:
            assert result.poses.ids is None
    assert detector.calls == sum(f for _, _, f in reference)
    if detect_every == 3:
        assert detector.calls < 10  # the detector really was skipped on carried frames
    assert not stream_threads()


def test_tracked_ids_confirmed_and_stable(model):
    images = [frames(1)[0]] * 6
    est = PoseEstimator(model, card=CARD, detector=StubDetector(drift=0.0))
    ids = [r.poses.ids.tolist() for r in est.stream(images, tracker={"min_hits": 2})]
    assert ids[0] == [-1, -1]
    assert len(set(ids[1])) == 2 and -1 not in ids[1]
    assert all(sorted(i) == sorted(ids[1]) for i in ids[2:])


def test_typed_options_are_used_as_given_and_dicts_converted(model):
    options = StreamOptions(tracker=TrackerSettings(min_hits=2), smoothing=SmoothingSettings(min_cutoff=1.0))
    assert StreamOptions(tracker={"min_hits": 2}, smoothing={"min_cutoff": 1.0}) == options
    est = PoseEstimator(model, card=CARD, detector=StubDetector(drift=0.0))
    stream = est.stream([frames(1)[0]] * 3, options)
    assert stream.options is options
    limited = est.stream([frames(1)[0]] * 3, options, keep_frames=False)
    assert limited.options == StreamOptions(tracker=options.tracker, smoothing=options.smoothing, keep_frames=False)
    ids = [r.poses.ids.tolist() for r in stream]
    assert ids[0] == [-1, -1] and -1 not in ids[1]
    assert all(r.frame is None for r in limited)
    with pytest.raises(InputError, match="match_oks"):
        StreamOptions(tracker={"match_oks": 1.5})
    with pytest.raises(InputError, match="min_cutoff"):
        StreamOptions(smoothing={"min_cutoff": 0})


def test_bad_frames_skipped_with_warning_and_stream_goes_on(model):
    images = frames(6)
    images[1] = None
    images[2] = images[2][..., 0]  # grayscale
    images[4] = images[4].astype(np.float32)
    est = PoseEstimator(model, card=CARD, detector=StubDetector())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stream = est.stream(images)
        got = [r.index for r in stream]
    assert got == [0, 3, 5]
    messages = [str(w.message) for w in caught if issubclass(w.category, StreamWarning)]
    assert len(messages) == 3
    assert "frame 1 skipped" in messages[0] and "gave None" in messages[0]
    assert "frame 2 skipped" in messages[1] and "(H, W, 3)" in messages[1]
    assert "frame 4 skipped" in messages[2] and "uint8" in messages[2]
    assert stream.stats == {"frames": 3, "skipped": 3, "detector_runs": 3}


def test_worker_error_is_raised_in_consumer_and_threads_stop(model):
    est = PoseEstimator(model, card=CARD, detector=StubDetector(fail_at=2))
    seen = []
    with pytest.raises(RuntimeError, match="detector exploded"):
        for result in est.stream(frames(8)):
            seen.append(result.index)
    assert seen == [0, 1]
    assert not stream_threads()


def test_queues_stay_bounded_with_a_slow_consumer(model):
    pulled = []

    def endless():
        image = frames(1)[0]
        while True:
            pulled.append(1)
            yield image

    est = PoseEstimator(model, card=CARD, detector=StubDetector())
    stream = est.stream(endless(), queue_size=2)
    iterator = iter(stream)
    next(iterator)
    counts = []
    for _ in range(200):  # the workers run ahead until every queue is full, then block: wait until nothing moves
        time.sleep(0.05)
        counts.append(len(pulled))
        if len(counts) >= 6 and len(set(counts[-6:])) == 1:
            break
    # 3 queues of 2, one item held by each of the 3 workers, and the one delivered
    assert counts[-1] == 3 * 2 + 3 + 1, counts
    iterator.close()
    assert not stream_threads()


def test_break_releases_threads_and_video_file(model, tmp_path):
    path = str(tmp_path / "clip.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 12.0, (240, 180))
    for image in frames(9):
        writer.write(image)
    writer.release()
    est = PoseEstimator(model, card=CARD, detector=StubDetector())
    results = list(est.stream(path))
    assert [r.index for r in results] == list(range(9))
    assert np.allclose(results[-1].time, 8 / 12.0)
    for result in est.stream(path):
        if result.index == 2:
            break
    assert not stream_threads()
    limited = list(est.stream(path, max_frames=4, keep_frames=False))
    assert len(limited) == 4 and limited[0].frame is None


def test_folder_with_a_corrupt_image(model, tmp_path):
    for i, image in enumerate(frames(3)):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), image)
    (tmp_path / "001.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    est = PoseEstimator(model, card=CARD, detector=StubDetector())
    with pytest.warns(StreamWarning, match="frame 1 skipped.*001.png"):
        assert [r.index for r in est.stream(str(tmp_path))] == [0, 2]


@pytest.mark.parametrize("source,match", [
    ("missing.mp4", "not found"),
    (np.zeros((10, 10, 3), np.uint8), "single array"),
    (3.5, "cannot stream"),
])
def test_bad_sources_refused(model, source, match):
    est = PoseEstimator(model, card=CARD, detector=StubDetector())
    with pytest.raises(InputError, match=match):
        est.stream(source)


def test_empty_or_truncated_video_raises(model, tmp_path):
    est = PoseEstimator(model, card=CARD, detector=StubDetector())
    with pytest.raises(InputError, match="no readable frame"):
        list(est.stream([]))
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 50)
    with pytest.raises(InputError, match="cut.mp4"):
        list(est.stream(str(bad)))


def test_stream_needs_a_detector_and_valid_options(model):
    est = PoseEstimator(model, card=CARD)
    with pytest.raises(InputError, match="needs a person detector"):
        est.stream(frames(2))
    est = PoseEstimator(model, card=CARD, detector=StubDetector())
    with pytest.raises(InputError, match="detect_every"):
        est.stream(frames(2), detect_every=0)
    stream = est.stream(frames(2))
    list(stream)
    with pytest.raises(InputError, match="iterated once"):
        iter(stream)


def test_boxes_from_keypoints():
    xy = np.array([[[10, 20], [30, 60], [20, 40], [500, 500]], [[5, 5], [6, 6], [7, 7], [8, 8]]], float)
    scores = np.array([[0.9, 0.9, 0.9, 0.1], [0.9, 0.1, 0.1, 0.1]])
    boxes, keep = boxes_from_keypoints(xy, scores, (100, 200, 3), threshold=0.3, min_keypoints=3, expand=1.5)
    assert keep.tolist() == [0]
    np.testing.assert_allclose(boxes, [[5, 10, 35, 70]])
    clipped, _ = boxes_from_keypoints(xy[:1], scores[:1] * 0 + 1, (100, 200, 3), 0.3, 3, 1.0)
    np.testing.assert_allclose(clipped, [[10, 20, 199, 99]])


class SlowEmptyQueue(queue.Queue):
    """A results queue whose first ``get`` times out only once every worker has ended, with their last items
    queued: the race where a consumer's wait ends just after the workers finished."""

    def __init__(self, maxsize):
        super().__init__(maxsize)
        self.first = True

    def get(self, block=True, timeout=None):
        if self.first:
            self.first = False
            for _ in range(200):
                if not stream_threads():
                    break
                time.sleep(0.01)
            raise queue.Empty
        return super().get(block, timeout)


@pytest.mark.parametrize("fail", [False, True])
def test_last_items_are_not_lost_when_workers_end_during_a_wait(model, fail):
    est = PoseEstimator(model, card=CARD, detector=StubDetector(fail_at=0 if fail else None))
    stream = est.stream(frames(1))
    stream._results = SlowEmptyQueue(2)
    if fail:
        with pytest.raises(RuntimeError, match="detector exploded"):
            list(stream)
    else:
        assert [r.index for r in stream] == [0]


class NoOverlapDetector:
    """Finds nobody, slowly, and records calls that overlap (a detector that is not thread-safe)."""

    def __init__(self):
        self.busy, self.overlaps, self.calls = False, 0, 0

    def __call__(self, frame):
        self.overlaps += self.busy
        self.busy = True
        time.sleep(0.01)
        self.calls += 1
        self.busy = False
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)


def test_detector_is_never_called_from_two_threads_at_once(model):
    detector = NoOverlapDetector()
    est = PoseEstimator(model, card=CARD, detector=detector)
    stream = est.stream(frames(30), detect_every=3)  # nobody found: the pose stage re-detects on carried frames
    assert len(list(stream)) == 30
    assert detector.overlaps == 0 and detector.calls == stream.stats["detector_runs"] == 30


def test_callers_generator_closed_and_unstarted_iterator_leaves_no_threads(model):
    closed = []

    def source():
        try:
            yield from frames(20)
        finally:
            closed.append(True)

    est = PoseEstimator(model, card=CARD, detector=StubDetector())
    for result in est.stream(source()):
        if result.index == 2:
            break
    assert closed == [True]
    stream = est.stream(frames(5))
    iterator = iter(stream)
    del iterator
    assert not stream_threads()
    stream.close()
    unused = est.stream(frames(5))
    unused.close()
    with pytest.raises(InputError, match="closed"):
        iter(unused)
    with pytest.raises(InputError, match="smoothing is per track"):
        est.stream(frames(2), track=False, smoothing={"min_cutoff": 1.0})
