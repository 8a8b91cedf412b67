"""Hardening (issue 8): bad frames, boxes, files, cards and model outputs give a typed edgepose error naming the
problem (or a warning), never a numpy/OpenCV exception or a silent wrong answer; odd but valid inputs just work.

Cases already covered elsewhere and not repeated here: validate_frame/validate_boxes unit cases
(test_affine_preprocess), truncated/empty ONNX through OnnxRuntimeBackend (test_backend) and read_card (test_card),
truncated/empty/missing TensorRT engines on stand-ins (test_cuda_emulated) and on a GPU (test_cuda_runtime), damaged
engine-cache entries (test_deploy_tensorrt), a 200-byte JPEG skipped by the CLI (test_cli_predict), NaN in decode
and flip_back per codec (test_codecs), NaN heatmaps through PoseEstimator (test_pipeline).
"""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgepose.backends import open_backend
from edgepose.backends.base import TensorSpec
from edgepose.card import CARD_KEY, ModelCard
from edgepose.codecs import build_codec
from edgepose.errors import CardError, EdgePoseError, InputError, MissingDependencyError, ModelError, OutputError
from edgepose.io import read_image
from edgepose.pipeline import PoseEstimator
from edgepose.video.frame_sources import open_frame_source
from tests.helpers.onnx_builders import conv_heatmap_model, lookup_model

CARD = ModelCard(input_size=(192, 256), mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), color="rgb",
                 codec="msra", heatmap_size=(48, 64), decode="dark")
FRAME = np.random.default_rng(0).integers(0, 256, (360, 480, 3), dtype=np.uint8)
BOX = np.array([[10.0, 20.0, 120.0, 300.0]])
BOXES = np.array([[10, 20, 120, 300], [200, 40, 330, 350], [300, 10, 470, 200]], float)

@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    return conv_heatmap_model(tmp_path_factory.mktemp("hardening") / "m.onnx", CARD)


@pytest.fixture(scope="module")
def est(model):
    with PoseEstimator(model) as estimator:
        yield estimator


# ---------------------------------------------------------------- frames


def _read_only(frame: np.ndarray) -> np.ndarray:
    frame = frame.copy()
    frame.flags.writeable = False
    return frame


BAD_FRAMES = {
    "None": (lambda: None, "numpy array"),
    "list": (lambda: FRAME[:4, :4].tolist(), "numpy array.*got list"),
    "empty (0,0,3)": (lambda: np.zeros((0, 0, 3), np.uint8), "too small"),
    "empty (0,5,3)": (lambda: np.zeros((0, 5, 3), np.uint8), "too small"),
    "1-D": (lambda: np.zeros(30, np.uint8), r"shape \(H, W, 3\)"),
    "grayscale (H,W)": (lambda: FRAME[..., 0], "GRAY2BGR"),
    "grayscale (H,W,1)": (lambda: FRAME[..., :1], "GRAY2BGR"),
    "BGRA": (lambda: np.dstack([FRAME, FRAME[..., :1]]), "BGRA2BGR"),
    "4-D batch": (lambda: FRAME[None], r"got \(1, 360, 480, 3\)"),
    "uint16": (lambda: FRAME.astype(np.uint16) * 257, "uint8.*got uint16"),
    "float32 0..1": (lambda: FRAME.astype(np.float32) / 255, "uint8.*got float32"),
    "float64": (lambda: FRAME.astype(np.float64), "uint8.*got float64"),
    "int32": (lambda: FRAME.astype(np.int32), "uint8.*got int32"),
    "bool": (lambda: FRAME > 127, "uint8.*got bool"),
    "1x1": (lambda: np.zeros((1, 1, 3), np.uint8), "1x1 pixels is too small"),
}


@pytest.mark.parametrize("case", list(BAD_FRAMES))
def test_bad_frame_is_an_input_error(est, case):
    make, message = BAD_FRAMES[case]
    with pytest.raises(InputError, match=message):
        est(make(), BOX)


def test_tiny_2x2_frame_works(est):
    poses = est(np.full((2, 2, 3), 200, np.uint8), [[0, 0, 1, 1]])
    assert poses.xy.shape == (1, 17, 2) and np.isfinite(poses.xy).all() and np.isfinite(poses.scores).all()


FRAME_VIEWS = {
    "mirrored view f[:, ::-1]": lambda f: f[:, ::-1],
    "every other row f[::2]": lambda f: f[::2],
    "reversed channels f[..., ::-1]": lambda f: f[..., ::-1],
    "BGR view of a BGRA buffer": lambda f: np.dstack([f, f[..., :1]])[..., :3],
    "Fortran order": np.asfortranarray,
    "read-only": _read_only,
    "read-only mirrored view": lambda f: _read_only(f)[:, ::-1],
}


@pytest.mark.parametrize("case", list(FRAME_VIEWS))
def test_frame_views_give_the_keypoints_of_a_contiguous_copy(est, case):
    view = FRAME_VIEWS[case](FRAME)
    assert not (view.flags.c_contiguous and view.flags.writeable)
    before = view.copy()
    got = est(view, BOXES)
    want = est(np.ascontiguousarray(view), BOXES)
    np.testing.assert_array_equal(got.xy, want.xy)
    np.testing.assert_array_equal(got.scores, want.scores)
    np.testing.assert_array_equal(view, before)  # the caller's frame is never written


@pytest.mark.parametrize(("height", "width", "y0", "x0"), [(8000, 8000, 7500, 7600), (400, 40000, 0, 39600)])
def test_huge_frame_works_like_the_same_pixels_in_a_small_one(est, height, width, y0, x0):
    """An 8000x8000 frame (or one wider than OpenCV's old 32767 limit) is cropped like any other: a patch placed far
    from the origin gives the same poses, shifted, as the patch alone. np.zeros maps pages lazily, so only the
    patch and the pages the warp reads are touched (tens of MB, not 192 MB)."""
    patch = np.random.default_rng(1).integers(0, 256, (400, 300, 3), dtype=np.uint8)
    box = np.array([[60.0, 50.0, 240.0, 350.0]])
    small = est(patch, box)
    big = np.zeros((height, width, 3), np.uint8)
    big[y0:y0 + 400, x0:x0 + 300] = patch
    poses = est(big, box + [x0, y0, x0, y0])
    np.testing.assert_allclose(poses.xy, small.xy + [x0, y0], atol=1e-3)
    np.testing.assert_allclose(poses.scores, small.scores, atol=1e-6)


# ---------------------------------------------------------------- boxes and box scores


BAD_BOXES = {
    "NaN": ([[np.nan, 20, 120, 300]], "box 0 has a NaN or infinite coordinate"),
    "Inf": ([[10, 20, np.inf, 300]], "NaN or infinite"),
    "None inside": ([[10, 20, 120, None]], "NaN or infinite"),
    "x2 < x1": ([[120, 20, 10, 300]], "zero or negative size"),
    "zero width": ([[10, 20, 10, 300]], "zero or negative size"),
    "a point": ([[50, 50, 50, 50]], "zero or negative size"),
    "second box bad": ([[10, 20, 120, 300], [10, 20, 120, 20]], "box 1 has zero or negative size"),
    "entirely right/below": ([[1000, 1000, 1100, 1100]], "entirely outside the 480x360 frame"),
    "entirely negative": ([[-100, -100, -10, -10]], "entirely outside"),
    "beyond the left edge": ([[-50, 20, -0.5, 300]], "entirely outside"),
    "shape (N, 3)": ([[10, 20, 120]], r"shape \(N, 4\).*\(1, 3\)"),
    "shape (3,)": ([10, 20, 120], r"shape \(N, 4\)"),
    "shape (1, 1, 4)": ([[[10, 20, 120, 300]]], r"shape \(N, 4\)"),
    "ragged list": ([[10, 20, 120, 300], [1, 2, 3]], "rectangular"),
    "strings": ([["10", "20", "120", "300"]], "real numbers"),
    "complex": (np.array([[10 + 1j, 20, 120, 300]]), "real numbers.*complex"),
    "bool": (np.array([[True, True, True, True]]), "real numbers.*bool"),
    "1e300 (float32 overflow)": ([[0, 0, 1e300, 1e300]], "beyond"),
}


@pytest.mark.parametrize("case", list(BAD_BOXES))
def test_bad_boxes_are_input_errors(est, case):
    boxes, message = BAD_BOXES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning / RuntimeWarning on the way to the error
        with pytest.raises(InputError, match=message):
            est(FRAME, boxes)


GOOD_BOXES = {
    "partly outside (top-left)": [[-50, -40, 100, 200]],
    "partly outside (bottom-right)": [[400, 300, 600, 500]],
    "covers the whole frame and more": [[-1000, -1000, 2000, 2000]],
    "one box as shape (4,)": [10, 20, 120, 300],
    "int dtype": np.array([[10, 20, 120, 300]], np.int64),
    "float32": np.array([[10, 20, 120, 300]], np.float32),
    "sub-pixel box": [[100, 100, 100.01, 100.01]],
}


@pytest.mark.parametrize("case", list(GOOD_BOXES))
def test_odd_but_valid_boxes_work(est, case):
    boxes = GOOD_BOXES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        poses = est(FRAME, boxes)
    assert len(poses) == 1 and np.isfinite(poses.xy).all() and np.isfinite(poses.scores).all()
    box = np.asarray(boxes, float).reshape(4)
    centre, size = (box[:2] + box[2:]) / 2, box[2:] - box[:2]
    window_w = 1.25 * max(size[0], 0.75 * size[1])  # the padded crop window, aspect 3:4 like the input
    half = 0.5 * np.array([window_w, window_w / 0.75]) + 1
    assert (np.abs(poses.xy - centre) <= half).all()  # keypoints lie in the crop window


def test_500_boxes_work_and_match_one_at_a_time(tmp_path):
    small = ModelCard(**{**CARD.to_dict(), "input_size": [48, 64], "heatmap_size": [12, 16]})
    rng = np.random.default_rng(2)
    x1, y1 = rng.uniform(-40, 440, 500), rng.uniform(-40, 320, 500)  # some partly outside, none entirely
    boxes = np.stack([x1, y1, x1 + rng.uniform(50, 300, 500), y1 + rng.uniform(50, 300, 500)], 1)
    with PoseEstimator(conv_heatmap_model(tmp_path / "small.onnx", small, input_size=(48, 64))) as est:
        poses = est(FRAME, boxes)
        assert poses.xy.shape == (500, 17, 2) and np.isfinite(poses.xy).all()
        for i in (0, 123, 499):
            one = est(FRAME, boxes[i])
            # ONNX Runtime's batch-500 and batch-1 convolutions round differently (~1e-7); DARK turns that into
            # ~1e-3 px at a stride-4 heatmap.
            np.testing.assert_allclose(poses.xy[i], one.xy[0], atol=1e-2)
            np.testing.assert_allclose(poses.scores[i], one.scores[0], atol=1e-5)


def test_box_scores_count_mismatch(est):
    with pytest.raises(InputError, match="got 3 boxes but 2 box scores"):
        est(FRAME, BOXES, [0.9, 0.8])
    with pytest.raises(InputError, match="got 1 boxes but 0 box scores"):
        est(FRAME, BOX, [])
    assert len(est(FRAME, BOXES, np.array([[0.9], [0.8], [0.7]]))) == 3  # (N, 1) is N scores


@pytest.mark.parametrize(("scores", "message"), [([np.nan], "box score 0 is NaN"), ([np.inf], "box score 0"),
                                                 (["high"], "real numbers"), ([None], "NaN")])
def test_bad_box_scores_are_input_errors(est, scores, message):
    with pytest.raises(InputError, match=message):
        est(FRAME, BOX, scores)


def test_detector_nan_scores_are_input_errors(model):
    def detector(frame):
        return BOX, np.array([np.nan], np.float32)

    with PoseEstimator(model, detector=detector) as est, pytest.raises(InputError, match="box score 0 is NaN"):
        est(FRAME)


def test_detector_bad_boxes_are_input_errors(model):
    def detector(frame):
        return np.array([[0, 0, np.nan, 5]]), np.ones(1)

    with PoseEstimator(model, detector=detector) as est, pytest.raises(InputError, match="NaN or infinite"):
        est(FRAME)


# ---------------------------------------------------------------- image, model, engine and video files


def _png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    assert ok
    return buf.tobytes()


@pytest.fixture(scope="module")
def jpeg(coco_dir) -> bytes:
    return (coco_dir / "000000196141.jpg").read_bytes()


@pytest.mark.parametrize("case", ["jpeg cut in half", "jpeg without its last 2 bytes", "jpeg header only",
                                  "png cut in half", "png without its IEND chunk", "random bytes", "zero bytes",
                                  "text", "missing"])
def test_unreadable_image_is_an_input_error(tmp_path, jpeg, case):
    png = _png(FRAME)
    data = {
        "jpeg cut in half": jpeg[: len(jpeg) // 2], "jpeg without its last 2 bytes": jpeg[:-2],
        "jpeg header only": jpeg[:600], "png cut in half": png[: len(png) // 2],
        "png without its IEND chunk": png[:-12],
        "random bytes": np.random.default_rng(3).bytes(5000), "zero bytes": b"", "text": b"not an image\n",
    }.get(case)
    path = tmp_path / ("image.png" if "png" in case else "image.jpg")
    if data is not None:
        path.write_bytes(data)
    with pytest.raises(InputError, match="image not found" if case == "missing" else "cannot decode image"):
        read_image(path)


def test_corrupt_jpeg_body_never_crashes(tmp_path, jpeg):
    """Random bytes in the entropy-coded body: libjpeg conceals the damage (and warns on stderr), so the result is an
    InputError or a well-formed frame, never an exception from OpenCV. (Not detectable without decoding twice.)"""
    half = len(jpeg) // 2
    (tmp_path / "bad.jpg").write_bytes(jpeg[:half] + np.random.default_rng(4).bytes(len(jpeg) - half))
    try:
        image = read_image(tmp_path / "bad.jpg")
    except InputError:
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


@pytest.mark.parametrize("kind", ["gray png", "16-bit png", "bgra png"])
def test_unusual_image_files_read_as_bgr_uint8(tmp_path, est, kind):
    image = {"gray png": FRAME[..., 0], "16-bit png": FRAME.astype(np.uint16) * 257,
             "bgra png": np.dstack([FRAME, np.full(FRAME.shape[:2], 128, np.uint8)])}[kind]
    (tmp_path / "x.png").write_bytes(_png(image))
    frame = read_image(tmp_path / "x.png")
    assert frame.shape == FRAME.shape and frame.dtype == np.uint8
    if kind != "gray png":
        np.testing.assert_array_equal(frame, FRAME)  # 16-bit: OpenCV keeps the high byte; BGRA: alpha dropped
    assert len(est(frame, BOX)) == 1


@pytest.mark.parametrize("case", ["first half", "first 100 bytes", "random bytes", "zero bytes", "text"])
def test_unloadable_onnx_is_a_model_error(tmp_path, model, case):
    data = Path(model).read_bytes()
    content = {"first half": data[: len(data) // 2], "first 100 bytes": data[:100],
               "random bytes": np.random.default_rng(5).bytes(4096), "zero bytes": b"",
               "text": b"this is not an ONNX model\n"}[case]
    (tmp_path / "bad.onnx").write_bytes(content)
    with pytest.raises(ModelError, match=r"ONNX Runtime cannot load .*bad\.onnx \(corrupt, truncated or unsupported"):
        PoseEstimator(tmp_path / "bad.onnx", card=CARD)
    with pytest.raises(ModelError, match="bad.onnx"):
        open_backend(tmp_path / "bad.onnx")


def test_onnx_with_an_unknown_operator_is_a_model_error(tmp_path):
    node = helper.make_node("NoSuchOperator", ["input"], ["heatmaps"], domain="example.invalid")
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 256, 192])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, ["N", 17, 64, 48])])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("example.invalid", 1)]
    proto = helper.make_model(graph, opset_imports=opsets)
    onnx.save(proto, str(tmp_path / "op.onnx"))
    with pytest.raises(ModelError, match="op.onnx"):
        PoseEstimator(tmp_path / "op.onnx", card=CARD)


def test_engine_without_tensorrt_is_a_missing_dependency_error(tmp_path, monkeypatch, model):
    """A (here truncated) .engine where tensorrt/pycuda are absent: MissingDependencyError naming the extra, raised
    before the file is parsed. With TensorRT present, truncated engines are ModelErrors (test_cuda_emulated)."""
    for name in ("tensorrt", "pycuda", "pycuda.driver"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError, even where they are installed
    (tmp_path / "cut.engine").write_bytes(Path(model).read_bytes()[:1000])
    CARD.save(tmp_path / "cut.engine.card.json")
    with pytest.raises(MissingDependencyError, match=r"tensorrt.*pip install 'edgepose\[tensorrt\]'") as info:
        PoseEstimator(tmp_path / "cut.engine")
    assert isinstance(info.value, EdgePoseError)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A real 10-frame mp4 (mp4v); its moov atom is written last, so any truncation loses the index."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    assert writer.isOpened()
    rng = np.random.default_rng(6)
    for _ in range(10):
        writer.write(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    writer.release()
    return path


def test_intact_video_reads_every_frame_without_warning(clip):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with open_frame_source(str(clip)) as source:
            got = list(source)
    assert len(got) == 10 and source.fps == 10.0 and all(f.error is None for f in got)
    assert got[0].image.shape == (120, 160, 3) and [f.index for f in got] == list(range(10))


@pytest.mark.parametrize("case", ["90%", "half", "first 48 bytes", "random bytes", "zero bytes", "missing"])
def test_unopenable_video_is_an_input_error(tmp_path, clip, case):
    data = clip.read_bytes()
    content = {"90%": data[: len(data) * 9 // 10], "half": data[: len(data) // 2], "first 48 bytes": data[:48],
               "random bytes": np.random.default_rng(7).bytes(20000), "zero bytes": b""}.get(case)
    path = tmp_path / "bad.mp4"
    if content is not None:
        path.write_bytes(content)
    message = "input not found" if case == "missing" else "cannot open video .*bad.mp4"
    with pytest.raises(InputError, match=message):
        open_frame_source(str(path))


def test_truncated_video_says_how_many_frames_it_read(tmp_path):
    """An AVI (MJPG) keeps frames before its index, so a cut file still opens: the frames that decode come out,
    then a last unreadable frame says the file ended early, which a stream turns into a StreamWarning."""
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    rng = np.random.default_rng(8)
    for _ in range(10):
        writer.write(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    writer.release()
    data = path.read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    with open_frame_source(str(tmp_path / "cut.avi")) as source:
        *good, last = list(source)
    assert 0 < len(good) < 10 and all(f.image is not None for f in good)
    assert last.image is None and last.index == len(good)
    assert re.search(rf"cut\.avi ended after {len(good)} of the 10 frames it declares", last.error)


# ---------------------------------------------------------------- cards that do not match the model


def _two_output_model(path: Path, source: str) -> str:
    """The conv model with a second output ('features', a copy of the heatmaps)."""
    proto = onnx.load(source)
    proto.graph.node.append(helper.make_node("Identity", ["heatmaps"], ["features"]))
    proto.graph.output.append(helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 17, 64, 48]))
    onnx.save(proto, str(path))
    return str(path)


def _uint8_input_model(path: Path) -> str:
    w = numpy_helper.from_array(np.zeros((17, 3, 4, 4), np.float32), "w")
    nodes = [helper.make_node("Cast", ["input"], ["x"], to=TensorProto.FLOAT),
             helper.make_node("Conv", ["x", "w"], ["heatmaps"], kernel_shape=[4, 4], strides=[4, 4])]
    graph = helper.make_graph(
        nodes, "u8", [helper.make_tensor_value_info("input", TensorProto.UINT8, ["N", 3, 256, 192])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, ["N", 17, 64, 48])], initializer=[w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return str(path)


def _simcc_model(path: Path) -> str:
    table = {"simcc_x": np.zeros((1, 17, 384), np.float32), "simcc_y": np.zeros((1, 17, 512), np.float32)}
    return lookup_model(path, None, np.zeros((1, 192), np.float32), table)


SIMCC = {"codec": "simcc", "simcc_split_ratio": 2.0, "heatmap_size": None, "sigma": [4.9, 5.66], "decode": "none",
         "output_names": []}
MISMATCHED_CARDS = {
    "input_size": ("heatmap", {"input_size": [256, 256]}, r"card field 'input_size' \[256, 256\]"),
    "input_size as [height, width]": ("heatmap", {"input_size": [256, 192], "heatmap_size": [64, 48]},
                                      r"card field 'input_size' \[256, 192\] \(\[width, height\]\)"),
    "heatmap_size": ("heatmap", {"heatmap_size": [24, 32]}, r"card field 'heatmap_size' \[24, 32\]"),
    "number of keypoints": ("heatmap", {"keypoints": list("abcde"), "flip_pairs": [], "skeleton": [], "sigmas": []},
                            "card lists 5 keypoints but .* has 17: set 'keypoints'"),
    "output_names on a two-output model": ("two outputs", {"output_names": ["pose"]},
                                           r"card output_names \['pose'\] are not all outputs"),
    "simcc card on a heatmap model": ("heatmap", SIMCC, r"output_names \['simcc_x', 'simcc_y'\] are not all outputs"),
    "heatmap card on a simcc model": ("simcc", {}, r"output_names \['heatmaps'\] are not all outputs"),
    "simcc_split_ratio": ("simcc", {**SIMCC, "simcc_split_ratio": 1.5}, "'simcc_split_ratio' 1.5"),
    "uint8 model input": ("uint8 input", {}, "not float32/float16"),
}


@pytest.mark.parametrize("case", list(MISMATCHED_CARDS))
def test_card_that_contradicts_the_model_is_a_card_error(tmp_path, model, case):
    kind, change, message = MISMATCHED_CARDS[case]
    path = {"heatmap": lambda: model, "two outputs": lambda: _two_output_model(tmp_path / "two.onnx", model),
            "simcc": lambda: _simcc_model(tmp_path / "simcc.onnx"),
            "uint8 input": lambda: _uint8_input_model(tmp_path / "u8.onnx")}[kind]()
    card = ModelCard(**{**CARD.to_dict(), **change})
    with pytest.raises(CardError, match=message):
        PoseEstimator(path, card=card)


def test_card_heatmap_size_against_a_dynamic_output_fails_on_the_first_frame(tmp_path, model):
    proto = onnx.load(model)
    for value in (proto.graph.input[0], proto.graph.output[0]):  # H and W dynamic: only running it tells the size
        for dim, name in zip(value.type.tensor_type.shape.dim[2:], ("h", "w"), strict=True):
            dim.dim_param = f"{value.name}_{name}"
    onnx.save(proto, str(tmp_path / "dyn.onnx"))
    card = ModelCard(**{**CARD.to_dict(), "heatmap_size": [24, 32]})
    with PoseEstimator(tmp_path / "dyn.onnx", card=card) as est, pytest.raises(
            OutputError, match=r"'heatmaps' has shape \[1, 17, 64, 48\], the card promises \[N, 17, 32, 24\]"):
        est(FRAME, BOX)


# ---------------------------------------------------------------- NaN / Inf in model outputs
# Decision: a non-finite value in any model output is an OutputError for the whole frame, naming the output, how
# many persons are affected and the first person and its keypoints; the CLI skips that input with a warning. A
# NaN never reaches Poses. (Zeroing one person instead would hide a broken or overflowing engine.)


class PoisonedBackend:
    """Wraps a backend (test_pipeline's CountingBackend pattern) and writes ``value`` into one person's output."""

    def __init__(self, inner, key: str, person: int, value: float, keypoint: int = 2):
        self.inner, self.key, self.person, self.value, self.keypoint = inner, key, person, value, keypoint
        self.inputs, self.outputs, self.metadata = inner.inputs, inner.outputs, inner.metadata

    def infer(self, feeds):
        out = dict(self.inner.infer(feeds))
        poisoned = out[self.key].copy()
        poisoned[self.person, self.keypoint, ..., 3] = self.value
        out[self.key] = poisoned
        return out

    def close(self):
        self.inner.close()


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("flip", [False, True])
def test_non_finite_heatmaps_are_an_output_error_naming_the_person(model, value, flip):
    # With the flip test the batch holds the 3 crops then their mirrors: person 4 is person 1's mirrored crop.
    backend = PoisonedBackend(open_backend(model), "heatmaps", 4 if flip else 1, value)
    with PoseEstimator(backend, flip=flip) as est, pytest.raises(
            OutputError, match=r"NaN or Inf in model output 'heatmaps' for 1 of 3 person\(s\) \(first: person 1, "):
        est(FRAME, BOXES)
    backend.close()


class SimccBackend:
    """A duck-typed Backend with SimCC outputs: the targets its codec encodes for fixed crop keypoints."""

    def __init__(self, card: ModelCard, keypoints: np.ndarray, poison: tuple[str, int, float] | None = None):
        w, h = card.input_size
        self.codec, self.keypoints, self.poison = build_codec(card), keypoints, poison
        self.inputs = [TensorSpec("input", np.dtype(np.float32), (None, 3, h, w))]
        self.outputs = [TensorSpec("simcc_x", np.dtype(np.float32), (None, 17, 2 * w)),
                        TensorSpec("simcc_y", np.dtype(np.float32), (None, 17, 2 * h))]
        self.metadata = {CARD_KEY: card.to_json()}

    def infer(self, feeds):
        n = len(feeds["input"])
        kp = np.broadcast_to(self.keypoints, (n, 17, 2))
        out, _ = self.codec.encode(kp, np.ones((n, 17)))
        if self.poison is not None:
            key, person, value = self.poison
            out[key][person, 5, 7] = value
        return out

    def close(self):
        pass


SIMCC_CARD = ModelCard(**{**CARD.to_dict(), **SIMCC, "decode": "dark"})
SIMCC_KEYPOINTS = np.random.default_rng(9).uniform([30, 40], [160, 210], (17, 2))  # crop pixels


def test_simcc_fake_backend_decodes_to_its_keypoints():
    """The fake is sound: without poison, poses are its crop keypoints mapped to the frame."""
    with PoseEstimator(SimccBackend(SIMCC_CARD, SIMCC_KEYPOINTS)) as est:
        poses = est(FRAME, BOXES)
        want = est.cropper.affine(BOXES).inverse().apply(np.broadcast_to(SIMCC_KEYPOINTS, (3, 17, 2)))
    np.testing.assert_allclose(poses.xy, want, atol=1e-3)


@pytest.mark.parametrize(("key", "value"), [("simcc_x", np.nan), ("simcc_y", np.inf)])
def test_non_finite_simcc_is_an_output_error(key, value):
    with PoseEstimator(SimccBackend(SIMCC_CARD, SIMCC_KEYPOINTS, (key, 2, value))) as est, pytest.raises(
            OutputError, match=rf"NaN or Inf in model output '{key}' for 1 of 3 person\(s\) \(first: person 2, "
                               r"keypoints \[5\]\)"):
        est(FRAME, BOXES)
