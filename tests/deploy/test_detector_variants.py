"""deploy.quantize.detector: freeing a YOLOX export's input size, and the INT8 calibration reader."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from deploy.quantize.detector import DetectorFrames, free_input_size
from edgepose.detector import letterbox
from edgepose.errors import InputError, ModelError


def _model(path, reshape_to) -> str:
    """Conv (3 -> 6 channels, stride 8) then Reshape to ``reshape_to`` and Transpose: a one-level raw 'head'."""
    weight = np.random.default_rng(0).normal(size=(6, 3, 8, 8)).astype(np.float32) * 0.01
    nodes = [helper.make_node("Conv", ["images", "w"], ["c"], strides=[8, 8]),
             helper.make_node("Reshape", ["c", "shape"], ["r"]),
             helper.make_node("Transpose", ["r"], ["output"], perm=[0, 2, 1])]
    graph = helper.make_graph(
        nodes, "head", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 64, 6])],
        initializer=[numpy_helper.from_array(weight, "w"), numpy_helper.from_array(np.array(reshape_to), "shape")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(onnx.shape_inference.infer_shapes(model), str(path))
    return str(path)


def test_free_input_size_same_outputs_and_any_size(tmp_path) -> None:
    src = _model(tmp_path / "fixed.onnx", [1, 6, -1])
    dst = free_input_size(src, tmp_path / "free.onnx")
    session = ort.InferenceSession(dst, providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 3, "height", "width"]
    x = np.random.default_rng(1).uniform(0, 255, (1, 3, 64, 64)).astype(np.float32)
    fixed = ort.InferenceSession(src, providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
    np.testing.assert_array_equal(session.run(None, {"images": x})[0], fixed)
    assert session.run(None, {"images": np.zeros((1, 3, 96, 128), np.float32)})[0].shape == (1, 12 * 16, 6)


def test_fixed_reshape_is_refused(tmp_path) -> None:
    src = _model(tmp_path / "fixed.onnx", [1, 6, 64])
    with pytest.raises(ModelError, match="Reshape"):
        free_input_size(src, tmp_path / "free.onnx")
    assert not (tmp_path / "free.onnx").exists()


def test_calibration_reader_letterboxes_each_view_at_each_size() -> None:
    frame = np.random.default_rng(2).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    reader = DetectorFrames([frame], sizes=(64, 32), flip=True)
    items = [reader.get_next() for _ in range(len(reader))]
    assert len(items) == 4 and reader.get_next() is None
    np.testing.assert_array_equal(items[0]["images"], letterbox(frame, (64, 64))[0])
    np.testing.assert_array_equal(items[1]["images"], letterbox(np.ascontiguousarray(frame[:, ::-1]), (64, 64))[0])
    assert items[3]["images"].shape == (1, 3, 32, 32)
    assert reader.rewind().get_next()["images"].shape == (1, 3, 64, 64)
    with pytest.raises(InputError):
        DetectorFrames([frame], sizes=(50,))
