"""YoloxDetector on the real YOLOX-Nano and the COCO samples, plus model/frame validation with tiny ONNX models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgepose.detector import DETECTORS, LETTERBOX_PAD, YoloxDetector, letterbox, make_grid, open_detector
from edgepose.errors import InputError, ModelError, OutputError
from edgepose.io import read_image
from tests.conftest import COCO_DIR, YOLOX


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lo, hi = np.maximum(box[:2], boxes[:, :2]), np.minimum(box[2:], boxes[:, 2:])
    inter = np.clip(hi - lo, 0, None).prod(axis=1)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / (area(box) + area(boxes) - inter)


@pytest.fixture(scope="module")
def samples() -> list[tuple[np.ndarray, np.ndarray]]:
    """(frame, GT person boxes xyxy) per image: non-crowd, num_keypoints > 0, area >= 32*32."""
    coco = json.loads((COCO_DIR / "test_coco.json").read_text())
    out = []
    for image in coco["images"]:
        gts = [a["bbox"] for a in coco["annotations"] if a["image_id"] == image["id"] and not a["iscrowd"]
               and a["num_keypoints"] > 0 and a["area"] >= 32 * 32]
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in gts], dtype=np.float64).reshape(-1, 4)
        out.append((read_image(COCO_DIR / image["file_name"]), boxes))
    return out


@pytest.fixture(scope="module")
def detector() -> YoloxDetector:
    with YoloxDetector(YOLOX) as det:
        yield det


def _recall(det: YoloxDetector, samples) -> tuple[int, int]:
    hits = total = 0
    for frame, gts in samples:
        boxes, _ = det(frame)
        for gt in gts:
            total += 1
            hits += bool(len(boxes)) and _iou(gt, boxes.astype(np.float64)).max() >= 0.5
    return hits, total


def test_recall_on_coco_samples(detector, samples) -> None:
    hits, total = _recall(detector, samples)
    assert total == 12
    # Measured 11/12 at the defaults (score > 0.3, NMS 0.45): the missed person (000000197388, bbox
    # [287, 62, 75, 166], partly occluded) peaks at score 0.274. At score_threshold 0.25 all 12 are found.
    assert hits >= 11
    hits_low, _ = _recall(YoloxDetector(YOLOX, score_threshold=0.25), samples)
    assert hits_low == total


def test_boxes_inside_frame_and_sorted(detector, samples) -> None:
    for frame, _ in samples:
        boxes, scores = detector(frame)
        height, width = frame.shape[:2]
        assert boxes.dtype == np.float32 and scores.dtype == np.float32
        assert boxes.shape == (len(scores), 4) and len(scores) > 0
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
        assert (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert (np.diff(scores) <= 0).all() and (scores > detector.score_threshold).all()


def test_decode_matches_per_anchor_loop(detector, samples) -> None:
    """The vectorised grid decode equals an obvious loop over levels, rows and columns."""
    frame = samples[3][0]
    blob, _ = detector.preprocess(frame)
    raw = detector.backend.infer({detector.input_name: blob})[detector.output_name]
    boxes, scores = detector.decode(raw)
    ref_boxes, ref_scores, index = [], [], 0
    for stride in (8, 16, 32):
        for gy in range(416 // stride):
            for gx in range(416 // stride):
                tx, ty, tw, th, obj = (float(v) for v in raw[0, index, :5])
                cls = raw[0, index, 5:]
                index += 1
                if obj * cls[0] > detector.score_threshold and int(np.argmax(cls)) == 0:
                    cx, cy, w, h = (tx + gx) * stride, (ty + gy) * stride, np.exp(tw) * stride, np.exp(th) * stride
                    ref_boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
                    ref_scores.append(obj * cls[0])
    assert index == raw.shape[1] == detector.num_anchors == 3549
    np.testing.assert_allclose(boxes, np.array(ref_boxes), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(scores, np.array(ref_scores), rtol=1e-6)


def test_nms_matches_greedy_reference(detector, samples) -> None:
    """cv2.dnn.NMSBoxes on xywh gives the same survivors as a plain greedy IoU NMS."""
    for frame, _ in samples:
        blob, ratio = detector.preprocess(frame)
        raw = detector.backend.infer({detector.input_name: blob})[detector.output_name]
        cand, cand_scores = detector.decode(raw)
        cand = cand.astype(np.float64) / ratio
        cand[:, 0::2] = cand[:, 0::2].clip(0, frame.shape[1])
        cand[:, 1::2] = cand[:, 1::2].clip(0, frame.shape[0])
        order, keep = list(np.argsort(-cand_scores, kind="stable")), []
        while order:
            best = order.pop(0)
            keep.append(best)
            order = [i for i in order if _iou(cand[best], cand[i:i + 1])[0] <= detector.nms_threshold]
        boxes, _ = detector(frame)
        np.testing.assert_allclose(boxes, cand[keep], atol=1e-3)


@pytest.mark.parametrize("frame", [
    None,
    np.zeros((48, 64), np.uint8),
    np.zeros((48, 64, 1), np.uint8),
    np.zeros((48, 64, 4), np.uint8),
    np.zeros((48, 64, 3), np.float32),
    np.zeros((0, 64, 3), np.uint8),
    [[0, 0, 0]],
])
def test_bad_frames_raise_input_error(detector, frame) -> None:
    with pytest.raises(InputError):
        detector(frame)


def test_truncated_model_raises_model_error(tmp_path) -> None:
    data = YOLOX.read_bytes()
    half = tmp_path / "half.onnx"
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError):
        YoloxDetector(half)


def test_registry_and_options() -> None:
    assert list(DETECTORS) == ["yolox"] and DETECTORS["yolox"] is YoloxDetector
    det = open_detector(YOLOX, score_threshold=0.5, backend_options={"threads": 1})
    assert isinstance(det, YoloxDetector) and det.input_size == (416, 416) and det.score_threshold == 0.5
    with pytest.raises(InputError, match="yolox"):
        open_detector(YOLOX, kind="ssd")
    with pytest.raises(InputError):
        YoloxDetector(YOLOX, score_threshold=1.5)


# --- tiny constant-output models: output = table + 0 * mean(input) -------------------------------------------


def _const_model(path: Path, table: np.ndarray, input_shape=(1, 3, 64, 64), out_shape=None) -> Path:
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["table", "nothing"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes, "const", [helper.make_tensor_value_info("images", TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, list(out_shape or table.shape))],
        initializer=[numpy_helper.from_array(table.astype(np.float32), "table"),
                     numpy_helper.from_array(np.array(0, np.float32), "zero")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _table(classes: int = 2) -> np.ndarray:
    """Raw output for a 64x64 input (8x8 + 4x4 + 2x2 = 84 anchors), every score zero."""
    table = np.zeros((1, 84, 5 + classes), np.float32)
    table[..., 2:4] = np.log(2.0)
    return table


def test_grid_layout_and_letterbox_undo(tmp_path) -> None:
    grid, strides = make_grid((64, 64))
    assert grid.shape == (84, 2) and strides.shape == (84, 1)
    index = 64 + 2 * 4 + 1  # stride-16 level, row 2, column 1
    assert grid[index].tolist() == [1, 2] and strides[index, 0] == 16
    table = _table()
    table[0, index] = [0.5, 0.5, 0.0, 0.0, 0.9, 0.8, 0.1]  # box centre (24, 40), size 16 in input pixels
    det = YoloxDetector(_const_model(tmp_path / "m.onnx", table))
    boxes, scores = det(np.zeros((128, 128, 3), np.uint8))  # letterbox ratio 0.5
    np.testing.assert_allclose(boxes, [[32, 64, 64, 96]], atol=1e-4)
    np.testing.assert_allclose(scores, [0.72], rtol=1e-6)


def test_class_filter_and_nms(tmp_path) -> None:
    table = _table()
    table[0, 9] = [0.5, 0.5, 1.0, 1.0, 0.9, 0.9, 0.1]  # person
    table[0, 10] = [0.5, 0.5, 1.0, 1.0, 0.9, 0.8, 0.1]  # same box shifted by 8 px: IoU 0.46 -> suppressed
    table[0, 40] = [0.5, 0.5, 0.0, 0.0, 0.9, 0.5, 0.7]  # class 1 wins -> not a person
    path = _const_model(tmp_path / "m.onnx", table)
    boxes, scores = YoloxDetector(path)(np.zeros((64, 64, 3), np.uint8))
    np.testing.assert_allclose(scores, [0.81], rtol=1e-6)
    boxes, scores = YoloxDetector(path, class_id=1)(np.zeros((64, 64, 3), np.uint8))
    np.testing.assert_allclose(scores, [0.63], rtol=1e-6)
    assert len(YoloxDetector(path, nms_threshold=0.7)(np.zeros((64, 64, 3), np.uint8))[0]) == 2
    empty = YoloxDetector(path, score_threshold=0.95)(np.zeros((64, 64, 3), np.uint8))
    assert empty[0].shape == (0, 4) and empty[1].shape == (0,)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_output_raises(tmp_path, value) -> None:
    table = _table()
    table[0, 5, 4] = value
    with pytest.raises(OutputError):
        YoloxDetector(_const_model(tmp_path / "m.onnx", table))(np.zeros((64, 64, 3), np.uint8))
    table = _table()
    table[0, 5] = [0, 0, 100.0, 0, 0.9, 0.9, 0.0]  # exp(100) overflows float32
    with pytest.raises(OutputError, match="non-finite"):
        YoloxDetector(_const_model(tmp_path / "m.onnx", table))(np.zeros((64, 64, 3), np.uint8))


@pytest.mark.parametrize("input_shape,table,match", [
    ((1, 1, 64, 64), _table(), "channels"),
    ((1, 3, 64, 48), np.zeros((1, 84, 7)), "divisible"),
    ((1, 3, "H", 64), _table(), "dynamic"),
    ((1, 3, "H", "W"), _table(), "anchors"),  # a free size runs at 416 unless told: 3549 anchors, not 84
    ((1, 3, 64, 64), np.zeros((1, 80, 7)), "anchors"),
    ((1, 3, 64, 64), np.zeros((1, 84, 5)), "class"),
    ((1, 3, 64, 64), np.zeros((84, 7)), "shape"),
])
def test_bad_models_raise_model_error(tmp_path, input_shape, table, match) -> None:
    with pytest.raises(ModelError, match=match):
        YoloxDetector(_const_model(tmp_path / "m.onnx", table, input_shape))


# --- input size: the packaged model has a free H/W; smaller sizes are the fast path -----------------------------


@pytest.mark.parametrize("size", [320, 256])
def test_smaller_input_keeps_recall(samples, size) -> None:
    """At 320 and 256 the packaged YOLOX-Nano finds as many of the 12 persons as at 416 (11 at score > 0.3;
    measured: the same one, 000000197388's occluded person, is missed). benchmarks/results/detector.json has the
    AP; 224 still finds 11, 192 only 10, so 256 is the smallest size offered as the fast path."""
    with YoloxDetector(YOLOX, input_size=size) as det:
        assert det.input_size == (size, size) and det.num_anchors == sum((size // s) ** 2 for s in (8, 16, 32))
        hits, total = _recall(det, samples)
    assert total == 12 and hits >= 11


def test_free_size_default_and_outputs_at_416(detector, samples) -> None:
    """The packaged model's H/W are free; without input_size it runs at 416, where input_size=416 gives the same."""
    assert detector.backend.inputs[0].shape[2:] == (None, None) and detector.input_size == (416, 416)
    with open_detector(YOLOX, input_size=(416, 416)) as same:
        for frame, _ in samples:
            for a, b in zip(detector(frame), same(frame), strict=True):
                np.testing.assert_array_equal(a, b)


def test_non_square_input_size(samples) -> None:
    with YoloxDetector(YOLOX, input_size=(320, 256)) as det:  # (width, height)
        assert det.input_hw == (256, 320) and det.input_size == (320, 256)
        blob, ratio = det.preprocess(samples[0][0])
        assert blob.shape == (1, 3, 256, 320)
        boxes, _ = det(samples[0][0])
        assert len(boxes) >= 1


@pytest.mark.parametrize("size", [100, 0, -32, (256,), (256, 250), 256.0, "256", True])
def test_bad_input_size_raises_input_error(size) -> None:
    with pytest.raises(InputError, match="input_size"):
        YoloxDetector(YOLOX, input_size=size)


def test_fixed_model_refuses_other_size(tmp_path) -> None:
    path = _const_model(tmp_path / "m.onnx", _table())
    assert YoloxDetector(path, input_size=64).input_size == (64, 64)
    with pytest.raises(InputError, match="fixed 64x64"):
        YoloxDetector(path, input_size=96)


def test_free_size_const_model_runs_at_given_size(tmp_path) -> None:
    table = _table()
    table[0, 9] = [0.5, 0.5, 0.0, 0.0, 0.9, 0.8, 0.1]
    path = _const_model(tmp_path / "m.onnx", table, input_shape=(1, 3, "H", "W"))
    boxes, scores = YoloxDetector(path, input_size=64)(np.zeros((64, 64, 3), np.uint8))
    np.testing.assert_allclose(scores, [0.72], rtol=1e-6)


def _letterbox_reference(frame: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, float]:
    """The obvious letterbox: a uint8 canvas of pad 114, the resized frame at its top-left, HWC -> NCHW float."""
    import cv2

    ratio = min(hw[0] / frame.shape[0], hw[1] / frame.shape[1])
    w = max(1, min(hw[1], int(frame.shape[1] * ratio)))
    h = max(1, min(hw[0], int(frame.shape[0] * ratio)))
    canvas = np.full((*hw, 3), LETTERBOX_PAD, np.uint8)
    canvas[:h, :w] = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)
    return canvas.transpose(2, 0, 1)[None].astype(np.float32), ratio


@pytest.mark.parametrize("shape,hw", [((425, 640, 3), (416, 416)), ((640, 425, 3), (256, 256)),
                                      ((100, 60, 3), (256, 320)), ((3, 2000, 3), (256, 256)),
                                      ((416, 416, 3), (416, 416)), ((1, 1, 3), (64, 64))])
def test_letterbox_matches_reference(shape, hw) -> None:
    """The per-channel fast letterbox equals padding a uint8 canvas and transposing it, on random frames."""
    frame = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    blob, ratio = letterbox(frame, hw)
    ref, ref_ratio = _letterbox_reference(frame, hw)
    assert blob.dtype == np.float32 and blob.flags.c_contiguous and ratio == ref_ratio
    np.testing.assert_array_equal(blob, ref)


def test_detector_skips_the_batch_axis_rewrite_unless_asked():
    """A detector runs one frame per call: loading it does not try (nor import onnx for) a batch rewrite."""
    from edgepose.assets import DEFAULT_DETECTOR

    with YoloxDetector(DEFAULT_DETECTOR) as det:
        assert det.backend.batch_mode == "loop" and "turned off" in det.backend.batch_note
    with YoloxDetector(DEFAULT_DETECTOR, backend_options={"batch_rewrite": True}) as det:
        assert "turned off" not in (det.backend.batch_note or "")
