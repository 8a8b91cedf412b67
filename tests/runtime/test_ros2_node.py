"""The ROS 2 node without ROS: image message conversion against OpenCV, PoseNodeCore end to end on a real ONNX model
(payload = PoseEstimator's own output, track ids, bad frames skipped), no rclpy at import, and ``main`` run end to end
on a fake rclpy (tests/helpers/fake_ros.py)."""

from __future__ import annotations

import array
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from edgepose.card import ModelCard
from edgepose.errors import InputError, OutputError
from edgepose.pipeline import PoseEstimator
from edgepose.ros2.convert import ENCODINGS, bgr_to_image_msg_fields, compressed_msg_to_bgr, image_msg_to_bgr
from edgepose.ros2.core import NodeConfig, PoseNodeCore, make_tracker
from edgepose.ros2.payload import payload_to_json
from edgepose.video.smoothing import SmoothingSettings
from edgepose.video.tracking import PoseTracker
from tests.helpers.fake_ros import write_fake_ros
from tests.helpers.onnx_builders import conv_heatmap_model

ROOT = Path(__file__).resolve().parents[2]
CARD = ModelCard(input_size=(192, 256), mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), color="rgb",
                 codec="msra", heatmap_size=(48, 64), decode="dark")
RNG = np.random.default_rng(0)
BGR = RNG.integers(0, 256, (7, 5, 3), dtype=np.uint8)
GRAY16 = RNG.integers(0, 65536, (7, 5), dtype=np.uint16)


def message(pixels: np.ndarray, encoding: str, pad: int = 0, big: bool = False, kind=bytes, sec=0, nanosec=0):
    """A sensor_msgs/Image-like namespace of ``pixels`` (H, W[, C]) with ``pad`` junk bytes after each row."""
    height, width = pixels.shape[:2]
    raw = pixels.astype(pixels.dtype.newbyteorder(">" if big else "<")) if pixels.dtype.itemsize > 1 else pixels
    rows = raw.reshape(height, -1).view(np.uint8)
    rows = np.concatenate([rows, np.full((height, pad), 0xAB, np.uint8)], axis=1)
    data = rows.tobytes()
    data = array.array("B", data) if kind is array.array else kind(data)
    header = SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec), frame_id="cam")
    return SimpleNamespace(header=header, height=height, width=width, encoding=encoding, is_bigendian=int(big),
                           step=rows.shape[1], data=data)


# encoding -> (pixels as the camera sends them, the BGR frame OpenCV makes of them)
CASES = {
    "bgr8": (BGR, BGR),
    "8UC3": (BGR, BGR),
    "rgb8": (cv2.cvtColor(BGR, cv2.COLOR_BGR2RGB), BGR),
    "bgra8": (cv2.cvtColor(BGR, cv2.COLOR_BGR2BGRA), BGR),
    "rgba8": (cv2.cvtColor(BGR, cv2.COLOR_BGR2RGBA), BGR),
    "mono8": (BGR[..., 0], cv2.cvtColor(BGR[..., 0], cv2.COLOR_GRAY2BGR)),
    "8UC1": (BGR[..., 1], cv2.cvtColor(BGR[..., 1], cv2.COLOR_GRAY2BGR)),
    "mono16": (GRAY16, cv2.cvtColor((GRAY16 >> 8).astype(np.uint8), cv2.COLOR_GRAY2BGR)),
    "16UC1": (GRAY16, cv2.cvtColor((GRAY16 >> 8).astype(np.uint8), cv2.COLOR_GRAY2BGR)),
}


@pytest.mark.parametrize("pad", [0, 3])
@pytest.mark.parametrize("encoding", list(CASES))
def test_each_encoding_matches_opencv_with_row_padding(encoding, pad):
    assert set(CASES) == set(ENCODINGS)
    pixels, expected = CASES[encoding]
    for big in (False, True) if pixels.dtype == np.uint16 else (False,):
        msg = message(pixels, encoding, pad=pad, big=big)
        frame = image_msg_to_bgr(msg)
        assert frame.shape == (7, 5, 3) and frame.dtype == np.uint8 and frame.flags.writeable
        np.testing.assert_array_equal(frame, expected)


@pytest.mark.parametrize("kind", [bytes, bytearray, array.array, list, memoryview])
def test_data_containers_and_extra_bytes(kind):
    msg = message(CASES["rgb8"][0], "rgb8", pad=2, kind=kind)
    np.testing.assert_array_equal(image_msg_to_bgr(msg), BGR)
    msg.data = bytes(msg.data) + b"\x00" * 5  # more than height * step: the tail is ignored
    np.testing.assert_array_equal(image_msg_to_bgr(msg), BGR)


def test_sixteen_bit_is_the_high_byte_and_endianness_matters():
    values = np.array([[0, 255, 256, 65535]], np.uint16)
    assert image_msg_to_bgr(message(values, "mono16"))[0, :, 0].tolist() == [0, 0, 1, 255]
    big = message(values, "16UC1", big=True)
    big.is_bigendian = 0  # the same bytes read the wrong way round
    assert image_msg_to_bgr(big)[0, :, 0].tolist() == [0, 255, 0, 255]


def test_bad_messages_raise_input_error_naming_the_problem():
    good = message(BGR, "bgr8", pad=1)
    cases = {
        "'yuv422' is not supported; supported encodings: bgr8": {"encoding": "yuv422"},
        "'32FC1' is not supported": {"encoding": "32FC1"},
        "None is not supported": {"encoding": None},
        "data has 10 bytes": {"data": bytes(10)},
        "step 14 is shorter than a row of 5 bgr8 pixels (15 bytes)": {"step": 14},
        "5x0 pixels is empty": {"height": 0},
        "0x7 pixels is empty": {"width": 0},
        "'height' must be an integer": {"height": 7.0},
        "bytes 0..255": {"data": [300] * 200},
        "got str": {"data": "abc"},
    }
    for text, change in cases.items():
        msg = SimpleNamespace(**{**vars(good), **change})
        with pytest.raises(InputError) as info:
            image_msg_to_bgr(msg)
        assert text in str(info.value), (text, str(info.value))


def test_compressed_images():
    ok, png = cv2.imencode(".png", BGR)
    msg = SimpleNamespace(format="png", data=array.array("B", png.tobytes()))
    np.testing.assert_array_equal(compressed_msg_to_bgr(msg), BGR)
    ok, jpeg = cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))
    gray = compressed_msg_to_bgr(SimpleNamespace(format="jpeg", data=jpeg.tobytes()))
    assert gray.shape == (16, 16, 3) and np.abs(gray.astype(int) - 128).max() < 3
    for data in (b"", b"not an image at all", png.tobytes()[:30]):
        with pytest.raises(InputError, match="CompressedImage"):
            compressed_msg_to_bgr(SimpleNamespace(format="png", data=data))


def test_annotated_frame_fields_round_trip():
    fields = bgr_to_image_msg_fields(BGR)
    assert {k: v for k, v in fields.items() if k != "data"} == {"height": 7, "width": 5, "encoding": "bgr8",
                                                                "is_bigendian": 0, "step": 15}
    assert isinstance(fields["data"], bytes)
    np.testing.assert_array_equal(image_msg_to_bgr(SimpleNamespace(**fields)), BGR)
    with pytest.raises(InputError, match=r"frame must be uint8 \(0-255\), got float32"):
        bgr_to_image_msg_fields(BGR.astype(np.float32))


# -- PoseNodeCore on a real ONNX model ------------------------------------------------------------------------------

BASE = np.random.default_rng(1).integers(0, 256, (240, 320, 3), dtype=np.uint8)
BOXES = np.array([[20.0, 30.0, 110.0, 220.0], [150.0, 20.0, 260.0, 230.0]])


def scene(t: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame t of two persons moving right by 2 px a frame (the image and its boxes shift together)."""
    return np.roll(BASE, 2 * t, axis=1), BOXES + [2 * t, 0, 2 * t, 0]


class StubDetector:
    """frame -> the boxes of the current scene (set by the test)."""

    boxes = BOXES

    def __call__(self, frame):
        return self.boxes.copy(), np.array([0.9, 0.8], np.float32)


@pytest.fixture()
def model(tmp_path):
    return conv_heatmap_model(tmp_path / "m.onnx", CARD)


def rgb_message(t: int, pad: int = 4) -> SimpleNamespace:
    frame, _ = scene(t)
    return message(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), "rgb8", pad=pad, kind=array.array,
                   sec=100 + t // 30, nanosec=(t % 30) * 33_333_333)


def test_core_payload_is_the_estimators_output_with_track_ids(model):
    detector, warnings = StubDetector(), []
    with PoseEstimator(model, detector=detector) as est, PoseEstimator(model, detector=detector) as reference:
        core = PoseNodeCore(est, PoseTracker(min_hits=2), draw=True, warn=warnings.append)
        for t in range(5):
            frame, detector.boxes = scene(t)
            payload, annotated = core.process(rgb_message(t))
            expected = reference(frame)
            assert payload["stamp"] == {"sec": 100, "nanosec": t * 33_333_333} and payload["frame_id"] == "cam"
            assert payload["keypoint_names"] == list(CARD.keypoints)
            assert len(payload["persons"]) == 2
            for person, xy, scores, box in zip(payload["persons"], expected.xy, expected.scores, expected.boxes,
                                               strict=True):
                kp = np.array(person["keypoints"])
                assert kp.shape == (17, 3)
                np.testing.assert_allclose(kp[:, :2], xy, atol=1e-4)
                np.testing.assert_allclose(kp[:, 2], scores, atol=1e-4)
                np.testing.assert_allclose(person["box"], box, atol=1e-4)
            ids = [p["id"] for p in payload["persons"]]
            assert ids == ([-1, -1] if t == 0 else [0, 1])  # confirmed from the min_hits-th frame on
            assert json.loads(payload_to_json(payload)) == payload
            assert annotated.shape == frame.shape and annotated.dtype == np.uint8
            assert (annotated != frame).any()
        assert (core.frames, core.skipped, core.processed) == (5, 0, 5) and warnings == []


def test_bad_frames_are_skipped_with_a_warning_and_the_node_goes_on(model):
    detector, warnings = StubDetector(), []
    with PoseEstimator(model, detector=detector) as est:
        core = PoseNodeCore(est, PoseTracker(min_hits=2), warn=warnings.append)
        assert core.process(rgb_message(0)) is not None
        bad = rgb_message(1)
        bad.encoding = "bayer_rggb8"
        assert core.process(bad) is None
        truncated = rgb_message(1)
        truncated.data = truncated.data[:100]
        assert core.process(truncated) is None
        detector.boxes = scene(2)[1]
        payload, annotated = core.process(rgb_message(2))
        assert annotated is None and [p["id"] for p in payload["persons"]] == [0, 1]  # the tracks survived
        assert (core.frames, core.skipped) == (4, 2) and len(warnings) == 2
        assert "skipped image 2" in warnings[0] and "'bayer_rggb8' is not supported" in warnings[0]
        assert "data has 100 bytes" in warnings[1]

    def failing(frame):
        raise OutputError("heatmaps contain NaN")

    core = PoseNodeCore(failing, warn=warnings.append)
    assert core.process(rgb_message(0)) is None and "heatmaps contain NaN" in warnings[-1]


def test_compressed_input_and_stamps_that_go_back(model):
    detector, warnings = StubDetector(), []
    with PoseEstimator(model, detector=detector) as est:
        core = PoseNodeCore(est, PoseTracker(min_hits=1), compressed=True, warn=warnings.append)
        _, png = cv2.imencode(".png", BASE)
        header = SimpleNamespace(stamp=SimpleNamespace(sec=5, nanosec=0), frame_id="cam")
        msg = SimpleNamespace(header=header, format="png", data=png.tobytes())
        first, _ = core.process(msg)
        np.testing.assert_allclose(np.array(first["persons"][0]["keypoints"])[:, :2], est(BASE).xy[0], atol=1e-4)
        header.stamp.sec = 4  # a bag replayed from the start
        again, _ = core.process(msg)
        assert [p["id"] for p in again["persons"]] == [2, 3] and "tracks reset" in warnings[-1]
        header.stamp.sec = 0  # no stamp: receive time instead, said once
        core.process(msg)
        core.process(msg)
        assert sum("no header stamp" in w for w in warnings) == 1 and core.skipped == 0


def test_config_builds_tracker_and_names_missing_parameters():
    assert make_tracker(NodeConfig(track=False)) is None
    assert make_tracker(NodeConfig()).smoothing == SmoothingSettings(min_cutoff=1.0, beta=0.05)
    assert make_tracker(NodeConfig(min_cutoff=0.0)).smoothing is None
    with pytest.raises(InputError, match="'model' is required"):
        NodeConfig().validate()
    with pytest.raises(InputError, match="'detector' is required"):
        NodeConfig(model="m.onnx").validate()
    with pytest.raises(InputError, match=">= 0"):
        NodeConfig(model="m.onnx", detector="d.onnx", beta=-1.0).validate()


# -- the node: no ROS at import; main() on a fake rclpy --------------------------------------------------------------


def run_python(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def test_import_needs_no_ros_or_torch_and_main_says_to_source_ros():
    out = run_python(
        "import sys\n"
        "import edgepose.ros2, edgepose.ros2.node, edgepose.ros2.core, edgepose.ros2.convert, edgepose.ros2.payload\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'rclpy', 'sensor_msgs', 'std_msgs', 'torch'})\n"
        "print('heavy:', heavy)\n"
        "from edgepose.errors import MissingDependencyError\n"
        "try:\n"
        "    edgepose.ros2.node.main(['edgepose-ros2'])\n"
        "except MissingDependencyError as exc:\n"
        "    print('error:', exc)\n"
        "sys.argv = ['edgepose-ros2']\n"
        "print('cli:', edgepose.ros2.node.cli())\n"
    )
    assert out.returncode == 0, out.stderr
    assert "heavy: []" in out.stdout
    assert "error: " in out.stdout and "source /opt/ros/<distro>/setup.bash" in out.stdout
    assert "cli: 2" in out.stdout and out.stderr.startswith("edgepose-ros2: error: ") and "rclpy" in out.stderr


def run_fake_node(tmp_path: Path, frames: np.ndarray, params: dict) -> tuple[subprocess.CompletedProcess, dict]:
    write_fake_ros(tmp_path / "ros")
    np.save(tmp_path / "frames.npy", frames)
    argv = ["edgepose-ros2", "--ros-args"] + [a for k, v in params.items() for a in ("-p", f"{k}:={v}")]
    env = {"PYTHONPATH": f"{tmp_path / 'ros'}{os.pathsep}{ROOT}", "FAKE_ROS_FRAMES": str(tmp_path / "frames.npy"),
           "FAKE_ROS_OUT": str(tmp_path / "report.json")}
    out = run_python(f"from edgepose.ros2.node import main\nprint('rc', main({argv!r}))", env)
    assert out.returncode == 0, out.stderr
    return out, json.loads((tmp_path / "report.json").read_text())["nodes"][0]


def test_main_end_to_end_on_a_fake_rclpy(tmp_path, model, yolox_path, coco_dir):
    image = cv2.imread(str(coco_dir / "000000000785.jpg"))
    out, node = run_fake_node(tmp_path, np.stack([image, image]), {
        "model": model, "detector": yolox_path, "annotated_topic": "~/annotated", "min_cutoff": 0.0, "threads": 1})
    assert "rc 0" in out.stdout and node["destroyed"]
    assert node["params"]["image_topic"] == "/camera/image_raw" and node["params"]["track"] is True
    (sub,) = node["subscriptions"]
    assert sub["topic"] == "/camera/image_raw" and sub["type"] == "Image"
    assert sub["qos"]["depth"] == "1" and sub["qos"]["reliability"] == "BEST_EFFORT"
    poses = node["published"]["~/poses"]
    assert [m["type"] for m in poses] == ["String", "String"]  # the bad message in between was skipped
    warnings = [text for level, text in node["logs"] if level == "warning"]
    assert len(warnings) == 1 and "'yuv422' is not supported" in warnings[0]
    assert any(level == "info" and "3 images, 1 skipped" in text for level, text in node["logs"])
    with PoseEstimator(model, detector=str(yolox_path)) as reference:
        expected = reference(image)
    assert len(expected) >= 1
    for index, message_ in enumerate(poses):
        payload = json.loads(message_["data"])
        assert payload["stamp"] == {"sec": index + 1, "nanosec": 0} and payload["frame_id"] == "cam"
        kp = np.array([p["keypoints"] for p in payload["persons"]])
        np.testing.assert_allclose(kp[..., :2], expected.xy, atol=1e-4)
        assert all((p["id"] >= 0) == (index == 1) for p in payload["persons"])
    annotated = node["published"]["~/annotated"]
    assert len(annotated) == 2 and annotated[0]["encoding"] == "bgr8" and annotated[0]["frame_id"] == "cam"
    assert annotated[0]["data_type"] == "array" and annotated[0]["step"] == 3 * image.shape[1]
    drawn = np.load(annotated[0]["npy"]).reshape(image.shape)
    assert (drawn != image).any()


def test_main_reports_a_missing_parameter_and_exits_2(tmp_path):
    out, node = run_fake_node(tmp_path, np.zeros((1, 8, 8, 3), np.uint8), {"detector": "d.onnx"})
    assert "rc 2" in out.stdout and node["destroyed"] and node["published"] == {}
    assert any(level == "error" and "'model' is required" in text for level, text in node["logs"])
