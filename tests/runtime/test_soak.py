"""A shorter soak of the stream (the 10,000-frame one is benchmarks/soak_stream.py): memory flat after warm-up,
no thread or file-descriptor growth, over a run and over many opened and closed streams."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgepose.bench.soak import settled_stats, soak_stream
from edgepose.card import ModelCard
from edgepose.pipeline import PoseEstimator
from tests.helpers.onnx_builders import conv_heatmap_model

CARD = ModelCard(input_size=(48, 64), mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), color="rgb",
                 codec="msra", heatmap_size=(12, 16), decode="dark")
# Bound on resident-memory growth between frame 500 and the end of a 2,000-frame soak. The frames and per-frame
# arrays are ~0.2 MiB each; a leak of one frame per frame would grow ~300 MiB, a leak of one pose result ~1 MiB.
RSS_GROWTH_BOUND_MIB = 8.0


def moving_scene(seed: int = 0):
    """Endless frames: a textured scene panning a pixel per frame."""
    base = cv2.GaussianBlur(np.random.default_rng(seed).integers(0, 256, (180, 240, 3), dtype=np.uint8), (7, 7), 2)
    i = 0
    while True:
        yield np.roll(base, i % 240, axis=1)
        i += 1


def detector(frame):
    h, w = frame.shape[:2]
    return np.array([[10, 10, w / 2, h - 10], [w / 2, 20, w - 10, h - 5]], np.float32), np.array([0.9, 0.8], np.float32)


@pytest.fixture()
def estimator(tmp_path):
    with PoseEstimator(conv_heatmap_model(tmp_path / "m.onnx", CARD, input_size=(48, 64)), card=CARD,
                       detector=detector, backend_options={"threads": 1}) as est:
        yield est


def warm_up(estimator) -> None:
    """OpenCV and ONNX Runtime start their thread pools lazily, on a stream's first frames: count after that."""
    list(estimator.stream(moving_scene(), max_frames=30))


def test_soak_memory_threads_and_files_stay_flat(estimator):
    warm_up(estimator)
    report = soak_stream(estimator, moving_scene(), frames=2000, sample_every=100, warmup=500, detect_every=3,
                         smoothing={"min_cutoff": 1.0, "beta": 0.01})
    assert report["frames"] == 2000 and report["stream_stats"]["skipped"] == 0
    assert report["rss_growth_after_warmup_mib"] < RSS_GROWTH_BOUND_MIB, report["samples"]
    running = report["samples"][:-1]  # at the last sample the workers may already have finished
    threads = {s["os_threads"] for s in running}
    fds = {s["fds"] for s in running}
    assert len(threads) == 1 and len(fds) == 1, (threads, fds)  # constant while streaming
    assert threads.pop() <= report["before"]["os_threads"] + 3  # the reader, detector and pose threads
    assert report["after"]["py_threads"] == report["before"]["py_threads"]
    assert report["after"]["os_threads"] <= report["before"]["os_threads"]  # pools may shrink, never grow
    assert report["after"]["fds"] == report["before"]["fds"]


def test_many_streams_opened_and_closed_leave_nothing_behind(estimator, tmp_path):
    path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10, (240, 180))
    scene = moving_scene()
    for _ in range(5):
        writer.write(next(scene))
    writer.release()
    for _ in range(3):  # warm up allocators, thread pools and ONNX Runtime
        list(estimator.stream(path))
    warm_up(estimator)
    before = settled_stats()
    for i in range(30):
        for result in estimator.stream(path):
            if result.index == i % 4:  # break at different points, and sometimes run to the end
                break
    after = settled_stats()
    assert after["py_threads"] == before["py_threads"]
    assert after["os_threads"] <= before["os_threads"]  # 30 streams of 3 workers each: a leak would show
    assert after["fds"] == before["fds"]
    assert after["rss_mib"] - before["rss_mib"] < RSS_GROWTH_BOUND_MIB
