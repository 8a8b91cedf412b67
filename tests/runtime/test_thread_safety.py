"""One PoseEstimator shared by threads gives the serial results: in parallel with ONNX Runtime, serialised by a lock
for backends that are not thread-safe."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from edgepose.card import ModelCard
from edgepose.pipeline import PoseEstimator
from tests.helpers.onnx_builders import conv_heatmap_model

CARD = ModelCard(input_size=(48, 64), mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), color="rgb",
                 codec="msra", heatmap_size=(12, 16), decode="dark")


def jobs(count: int = 48):
    rng = np.random.default_rng(1)
    out = []
    for _ in range(count):
        h, w = rng.integers(120, 400, 2)
        frame = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 1.5)
        n = int(rng.integers(0, 6))
        xy = rng.uniform(0, [w - 30, h - 30], (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(20, 200, (n, 2))], axis=1)
        out.append((frame, boxes))
    return out


def test_shared_onnxruntime_estimator_matches_serial(tmp_path, yolox_path, coco_dir):
    model = conv_heatmap_model(tmp_path / "m.onnx", CARD, input_size=(48, 64))
    work = jobs()
    with PoseEstimator(model, card=CARD, detector=yolox_path) as est:
        assert est.backend.thread_safe
        serial = [est(f, b) for f, b in work]
        with ThreadPoolExecutor(4) as pool:
            for _ in range(3):
                parallel = list(pool.map(lambda job: est(*job), work))
                for a, b in zip(serial, parallel, strict=True):
                    np.testing.assert_array_equal(a.xy, b.xy)
                    np.testing.assert_array_equal(a.scores, b.scores)
        photos = [cv2.imread(str(p)) for p in sorted(coco_dir.glob("*.jpg"))] * 3  # the shared detector too
        detected = [est(p) for p in photos]
        with ThreadPoolExecutor(4) as pool:
            for a, b in zip(detected, pool.map(est, photos), strict=True):
                np.testing.assert_array_equal(a.boxes, b.boxes)
                np.testing.assert_array_equal(a.xy, b.xy)


class OneAtATime:
    """A backend that is not thread-safe: it fails if two calls overlap, and records how many ran."""

    thread_safe = False

    def __init__(self, inner):
        self.inner, self.busy, self.calls, self.overlaps = inner, False, 0, 0
        self.inputs, self.outputs, self.metadata = inner.inputs, inner.outputs, inner.metadata

    def infer(self, feeds):
        if self.busy:
            self.overlaps += 1
        self.busy = True
        time.sleep(0.002)  # widen the window an overlap would need
        out = self.inner.infer(feeds)
        self.calls += 1
        self.busy = False
        return out

    def close(self):
        self.inner.close()


def test_backend_that_is_not_thread_safe_is_serialised(tmp_path):
    from edgepose.backends import open_backend

    model = conv_heatmap_model(tmp_path / "m.onnx", CARD, input_size=(48, 64))
    backend = OneAtATime(open_backend(model))
    work = [job for job in jobs(24) if len(job[1])]
    est = PoseEstimator(backend, card=CARD)
    serial = [est(f, b) for f, b in work]
    barrier = threading.Barrier(4)

    def run(chunk):
        barrier.wait()
        return [est(f, b) for f, b in chunk]

    with ThreadPoolExecutor(4) as pool:
        parts = list(pool.map(run, [work[i::4] for i in range(4)]))
    assert backend.overlaps == 0 and backend.calls == 2 * len(work)
    for i in range(4):
        for a, b in zip(serial[i::4], parts[i], strict=True):
            np.testing.assert_array_equal(a.xy, b.xy)
    backend.close()
