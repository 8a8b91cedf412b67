"""A stand-in pose network for runtime benchmarks, built with onnx.helper (no torch, no downloads).

Shape and cost of a small edge pose model: 256x192 input, two stride-2 stems to 1/4 resolution, depthwise-separable
residual-free blocks at 64x48, a 1x1 head to 17 heatmaps of 64x48. About 0.3 GFLOPs (Lite-HRNet-18 is 0.20,
Lite-HRNet-30 0.31). Weights are random: it measures time, not accuracy. Once trained students exist, the
benchmarks take ``--model`` to time them instead.
"""

from __future__ import annotations

import numpy as np

from edgepose.card import CARD_KEY, ModelCard

CARD = ModelCard(input_size=(192, 256), mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), color="rgb",
                 codec="msra", heatmap_size=(48, 64), sigma=2.0, decode="dark", name="bench-dwnet-0.3gflops")


def _conv(nodes, inits, rng, x, cin, cout, k, stride, group=1, relu=True, name=""):
    w = rng.normal(0, np.sqrt(2.0 / (cin // group * k * k)), (cout, cin // group, k, k)).astype(np.float32)
    b = np.zeros(cout, np.float32)
    from onnx import helper, numpy_helper

    inits += [numpy_helper.from_array(w, f"{name}_w"), numpy_helper.from_array(b, f"{name}_b")]
    pad = k // 2
    out = f"{name}_y"
    nodes.append(helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [out], kernel_shape=[k, k],
                                  strides=[stride, stride], pads=[pad] * 4, group=group))
    if relu:
        nodes.append(helper.make_node("Relu", [out], [f"{name}_r"]))
        out = f"{name}_r"
    return out


def gflops(blocks: int = 6, width: int = 64) -> float:
    """Multiply-adds x 2 of the network, in GFLOPs."""
    h, w = 128, 96
    total = h * w * 32 * 3 * 9
    h, w = 64, 48
    total += h * w * width * 32 * 9
    total += blocks * (h * w * width * 9 + h * w * width * width)
    total += h * w * 17 * width
    return 2 * total / 1e9


def build(path: str, blocks: int = 6, width: int = 64, seed: int = 0, card: ModelCard = CARD) -> str:
    """Write the network to ``path`` (dynamic batch, card embedded) and return the path."""
    import onnx
    from onnx import TensorProto, helper

    rng = np.random.default_rng(seed)
    nodes: list = []
    inits: list = []
    x = _conv(nodes, inits, rng, "input", 3, 32, 3, 2, name="stem1")
    x = _conv(nodes, inits, rng, x, 32, width, 3, 2, name="stem2")
    for i in range(blocks):
        x = _conv(nodes, inits, rng, x, width, width, 3, 1, group=width, name=f"dw{i}")
        x = _conv(nodes, inits, rng, x, width, width, 1, 1, name=f"pw{i}")
    _conv(nodes, inits, rng, x, width, 17, 1, 1, relu=False, name="head")
    nodes.append(helper.make_node("Identity", ["head_y"], ["heatmaps"]))
    w, h = card.input_size
    graph = helper.make_graph(
        nodes, "bench_dwnet", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, h, w])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, ["N", 17, h // 4, w // 4])], initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    entry = model.metadata_props.add()
    entry.key, entry.value = CARD_KEY, card.to_json()
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def export_zoo_model(name: str, path: str, card: ModelCard = CARD) -> str:
    """Export a randomly initialised ``compress.models`` network (e.g. lite_hrnet_18) with ``card`` embedded.

    Random weights time the real graph; accuracy comes from trained checkpoints, not from here.
    """
    import onnx
    import torch

    from compress.models import build_model

    model = build_model(name, num_keypoints=card.num_keypoints, input_size=card.input_size).eval()
    w, h = card.input_size
    torch.onnx.export(model, torch.zeros(1, 3, h, w), path, input_names=["input"], output_names=["heatmaps"],
                      dynamic_axes={"input": {0: "N"}, "heatmaps": {0: "N"}}, opset_version=17, dynamo=False)
    graph = onnx.load(path)
    entry = graph.metadata_props.add()
    entry.key, entry.value = CARD_KEY, card.to_json()
    onnx.save(graph, path)
    return path
