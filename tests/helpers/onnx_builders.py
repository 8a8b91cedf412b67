"""Small ONNX models the tests build on the fly (onnx.helper), with an optional card embedded."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgepose.card import CARD_KEY, ModelCard

OPSET = 17


def _save(graph, path, card: ModelCard | None) -> str:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    if card is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = CARD_KEY, card.to_json()
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def _input(name: str, size: tuple[int, int], batch, dtype=TensorProto.FLOAT):
    w, h = size
    return helper.make_tensor_value_info(name, dtype, [batch, 3, h, w])


def conv_heatmap_model(path, card: ModelCard | None, input_size=(192, 256), num_keypoints=17, stride=4,
                       fixed_batch: int | None = None, input_name="input", output_name="heatmaps", seed=0) -> str:
    """input (N,3,H,W) -> strided conv -> sigmoid -> (N,K,H/stride,W/stride): random but deterministic heatmaps."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.05, (num_keypoints, 3, stride, stride)).astype(np.float32)
    batch = fixed_batch if fixed_batch else "N"
    hw, hh = input_size[0] // stride, input_size[1] // stride
    nodes = [
        helper.make_node("Conv", [input_name, "w"], ["logits"], kernel_shape=[stride] * 2, strides=[stride] * 2),
        helper.make_node("Sigmoid", ["logits"], [output_name]),
    ]
    graph = helper.make_graph(
        nodes, "conv_heatmap", [_input(input_name, input_size, batch)],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [batch, num_keypoints, hh, hw])],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    return _save(graph, path, card)


def lookup_model(path, card: ModelCard | None, fingerprints: np.ndarray, table: dict[str, np.ndarray],
                 input_size=(192, 256), grid=8) -> str:
    """A model whose outputs are looked up, not computed: the crop's fingerprint (its ``grid`` x ``grid`` average
    pooled pixels, flattened) picks the nearest row of ``fingerprints`` (P, 3*grid*grid), and each output is that
    row of ``table[name]`` (P, ...). Tests fill the table with targets encoded from ground truth, so the whole
    chain crop -> inference -> decode -> inverse must give the ground truth back."""
    w, h = input_size
    fp = fingerprints.astype(np.float32)
    inits = [
        numpy_helper.from_array(fp.T.copy(), "fp_t"),
        numpy_helper.from_array((fp ** 2).sum(1)[None].astype(np.float32), "fp_sq"),
        numpy_helper.from_array(np.array(-2.0, np.float32), "minus2"),
    ]
    nodes = [
        helper.make_node("AveragePool", ["input"], ["pooled"], kernel_shape=[h // grid, w // grid],
                         strides=[h // grid, w // grid]),
        helper.make_node("Flatten", ["pooled"], ["feat"], axis=1),
        helper.make_node("MatMul", ["feat", "fp_t"], ["dot"]),
        helper.make_node("Mul", ["dot", "minus2"], ["dot2"]),
        helper.make_node("ReduceSumSquare", ["feat"], ["feat_sq"], axes=[1], keepdims=1),
        helper.make_node("Add", ["feat_sq", "dot2"], ["partial"]),
        helper.make_node("Add", ["partial", "fp_sq"], ["dist"]),
        helper.make_node("ArgMin", ["dist"], ["index"], axis=1, keepdims=0),
    ]
    outputs = []
    for name, values in table.items():
        inits.append(numpy_helper.from_array(values.astype(np.float32), f"{name}_table"))
        nodes.append(helper.make_node("Gather", [f"{name}_table", "index"], [name], axis=0))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *values.shape[1:]]))
    graph = helper.make_graph(nodes, "lookup", [_input("input", input_size, "N")], outputs, initializer=inits)
    return _save(graph, path, card)


def fingerprint(batch: np.ndarray, grid: int = 8) -> np.ndarray:
    """The same fingerprint the lookup model computes, in numpy: (N,3,H,W) -> (N, 3*grid*grid)."""
    n, c, h, w = batch.shape
    pooled = batch.reshape(n, c, grid, h // grid, grid, w // grid).mean(axis=(3, 5))
    return pooled.reshape(n, -1)
