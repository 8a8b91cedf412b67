"""Sub-pixel rewrite of ConvTranspose(k4, s2, p1): equal to the deconvolution in ONNX Runtime (random weights and
sizes, with and without bias and a following Relu, a torch export with BatchNorm, the trained teacher when present),
unsupported configurations left untouched, the card kept, and quantize_int8 / the CLI using it for uint8."""

from __future__ import annotations

import argparse

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from deploy.quantize.subpixel_deconv import rewrite_deconvs, subpixel_weight
from edgepose.card import CARD_KEY, ModelCard

ATOL = 1e-4  # float32 rounding of sums of Cin*4 products of O(1) values; measured below 1e-5
CARD = ModelCard(input_size=(96, 128), mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), color="rgb",
                 codec="msra", heatmap_size=(24, 32), decode="dark", name="subpixel")


def deconv_model(cin: int, cout: int, h: int, w: int, bias: bool = True, relu: bool = False, opset: int = 17,
                 weight_shape: tuple[int, ...] | None = None, weight_as_input: bool = False, seed: int = 0,
                 **attrs) -> onnx.ModelProto:
    """x (N, cin, h, w) -> ConvTranspose(**attrs; default k4 s2 p1) [-> Relu] -> y; random weights."""
    rng = np.random.default_rng(seed)
    attrs = {"kernel_shape": [4, 4], "strides": [2, 2], "pads": [1, 1, 1, 1], **attrs}
    attrs = {k: v for k, v in attrs.items() if v is not None}
    shape = weight_shape or (cin, cout // attrs.get("group", 1), *attrs.get("kernel_shape", [4, 4]))
    weight = rng.normal(0, 1 / np.sqrt(cin * 4), shape).astype(np.float32)
    inits = [] if weight_as_input else [numpy_helper.from_array(weight, "w")]
    inputs = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.normal(0, 1, cout).astype(np.float32), "b"))
        inputs.append("b")
    nodes = [helper.make_node("ConvTranspose", inputs, ["deconv" if relu else "y"], name="up", **attrs)]
    if relu:
        nodes.append(helper.make_node("Relu", ["deconv"], ["y"], name="up_relu"))
    spatial = ["N", cin, h, w][: len(shape)]
    graph_inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, spatial)]
    if weight_as_input:
        graph_inputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, list(shape)))
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", cout, "OH", "OW"][: len(shape)])
    graph = helper.make_graph(nodes, "deconv", graph_inputs, [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    entry = model.metadata_props.add()
    entry.key, entry.value = "note", "kept"
    return model


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def assert_same_function(model: onnx.ModelProto, new: onnx.ModelProto, x: np.ndarray, name: str = "x") -> None:
    onnx.checker.check_model(new)
    onnx.shape_inference.infer_shapes(new, check_type=True, strict_mode=True)
    for want, got in zip(run(model, {name: x}), run(new, {name: x}), strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)


@pytest.mark.parametrize("cin, cout, h, w, bias", [
    (3, 5, 4, 4, True), (8, 4, 3, 7, False), (16, 8, 5, 2, True), (1, 1, 1, 1, False), (6, 3, 9, 6, True),
])
def test_rewrite_equals_conv_transpose(cin, cout, h, w, bias):
    model = deconv_model(cin, cout, h, w, bias=bias, seed=cin * 100 + h)
    new, rewritten = rewrite_deconvs(model)
    assert rewritten == ["up"]
    assert [n.op_type for n in new.graph.node] == ["Conv", *["Slice"] * 4, "Concat", "DepthToSpace"]
    assert {t.name for t in new.graph.initializer}.isdisjoint({"w", "b"})  # the old weights are dropped
    x = np.random.default_rng(1).normal(size=(2, cin, h, w)).astype(np.float32)
    assert_same_function(model, new, x)
    assert [n.op_type for n in model.graph.node] == ["ConvTranspose"]  # the input model is not modified


@pytest.mark.parametrize("absorb", [True, False])
def test_following_relu_is_absorbed_exactly(absorb):
    model = deconv_model(8, 6, 5, 3, relu=True)
    new, rewritten = rewrite_deconvs(model, absorb_relu=absorb)
    ops = [n.op_type for n in new.graph.node]
    assert rewritten == ["up"]
    assert ops == (["Conv", "Relu", *["Slice"] * 4, "Concat", "DepthToSpace"] if absorb
                   else ["Conv", *["Slice"] * 4, "Concat", "DepthToSpace", "Relu"])
    assert "up_relu" in {n.name for n in new.graph.node}  # the Relu keeps its name (exclusion lists still apply)
    assert_same_function(model, new, np.random.default_rng(2).normal(size=(3, 8, 5, 3)).astype(np.float32))


def test_relu_is_not_absorbed_when_the_deconv_output_is_read_elsewhere():
    model = deconv_model(4, 4, 3, 3, relu=True)
    model.graph.output.append(helper.make_tensor_value_info("deconv", TensorProto.FLOAT, ["N", 4, 6, 6]))
    new, rewritten = rewrite_deconvs(model)
    assert rewritten == ["up"] and [n.op_type for n in new.graph.node][-1] == "Relu"
    assert_same_function(model, new, np.random.default_rng(3).normal(size=(1, 4, 3, 3)).astype(np.float32))


def test_subpixel_weight_layout():
    """Phase (a, b), tap (dy, dx) of the Conv holds deconvolution tap (3 - a - 2dy, 3 - b - 2dx)."""
    weight = np.arange(2 * 3 * 16, dtype=np.float32).reshape(2, 3, 4, 4)
    conv = subpixel_weight(weight)
    assert conv.shape == (12, 2, 2, 2)
    for g, (a, b) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        for dy in range(2):
            for dx in range(2):
                np.testing.assert_array_equal(conv[g * 3:(g + 1) * 3, :, dy, dx],
                                              weight[:, :, 3 - a - 2 * dy, 3 - b - 2 * dx].T)
    with pytest.raises(ValueError, match="Cin, Cout, 4, 4"):
        subpixel_weight(np.zeros((2, 3, 3, 3), np.float32))


@pytest.mark.parametrize("case", [
    dict(strides=[1, 1]), dict(kernel_shape=[3, 3], weight_shape=(4, 4, 3, 3)), dict(pads=[0, 0, 0, 0]),
    dict(pads=[1, 2, 1, 2]), dict(group=2, weight_shape=(4, 2, 4, 4)), dict(dilations=[2, 2]),
    dict(output_padding=[1, 1]), dict(output_shape=[8, 8], pads=None), dict(auto_pad="SAME_UPPER", pads=None),
    dict(weight_as_input=True), dict(opset=10), dict(weight_shape=(4, 4, 4), kernel_shape=[4], strides=[2],
                                                     pads=[1, 1]),
], ids=["stride1", "kernel3", "pad0", "pad_asym", "group2", "dilation2", "output_padding", "output_shape",
        "auto_pad", "weight_not_initializer", "opset10", "conv1d"])
def test_unsupported_configurations_are_left_untouched(case):
    model = deconv_model(4, 4, 4, 4, **case)
    new, rewritten = rewrite_deconvs(model)
    assert rewritten == [] and new.SerializeToString() == model.SerializeToString()


def test_skip_and_metadata():
    model = deconv_model(4, 4, 4, 4)
    entry = model.metadata_props.add()
    entry.key, entry.value = CARD_KEY, CARD.to_json()
    new, rewritten = rewrite_deconvs(model, skip=["up"])
    assert rewritten == [] and [n.op_type for n in new.graph.node] == ["ConvTranspose"]
    new, rewritten = rewrite_deconvs(model)
    assert rewritten == ["up"]
    assert [(p.key, p.value) for p in new.metadata_props] == [(p.key, p.value) for p in model.metadata_props]


def test_torch_deconv_bn_relu_export(tmp_path):
    """Two ConvTranspose2d(k4, s2, p1) + BatchNorm + ReLU blocks as torch exports them (BN folded into the
    deconvolution weights), non-square input: the rewrite equals torch and the original ONNX."""
    import torch

    torch.manual_seed(0)
    blocks = []
    for cin, cout in ((6, 5), (5, 4)):
        bn = torch.nn.BatchNorm2d(cout)
        with torch.no_grad():
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
        blocks += [torch.nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), bn, torch.nn.ReLU()]
    module = torch.nn.Sequential(*blocks).eval()
    path = tmp_path / "deconv.onnx"
    torch.onnx.export(module, torch.zeros(1, 6, 5, 3), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}}, opset_version=17, dynamo=False)
    model = onnx.load(str(path))
    new, rewritten = rewrite_deconvs(model)
    assert len(rewritten) == 2 and not any(n.op_type == "ConvTranspose" for n in new.graph.node)
    x = np.random.default_rng(4).normal(size=(2, 6, 5, 3)).astype(np.float32)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run(new, {"x": x})[0], want, rtol=0, atol=ATOL)
    assert_same_function(model, new, x)


def test_simple_baseline_head(tmp_path):
    """The real architecture: SimpleBaseline-18 (three deconvolutions with BN + ReLU) at 96x128, realistic weights."""
    import torch

    from compress.models import build_model
    from compress.models.random_init import realistic_random_weights

    net = realistic_random_weights(build_model("simple_baseline_18", input_size=(96, 128)), seed=1)
    path = tmp_path / "sb18.onnx"
    torch.onnx.export(net, torch.zeros(1, 3, 128, 96), str(path), input_names=["input"], output_names=["heatmaps"],
                      opset_version=17, dynamic_axes={"input": {0: "N"}}, dynamo=False)
    model = onnx.load(str(path))
    new, rewritten = rewrite_deconvs(model)
    assert len(rewritten) == 3 and not any(n.op_type == "ConvTranspose" for n in new.graph.node)
    x = np.random.default_rng(5).normal(size=(2, 3, 128, 96)).astype(np.float32)
    assert_same_function(model, new, x, name="input")


# ------------------------------------------------------------------------------------------- quantize_int8 / CLI


@pytest.fixture(scope="module")
def pose_with_deconv(tmp_path_factory) -> str:
    """input (N,3,128,96) -> Conv k8 s8 + Relu -> ConvTranspose k4 s2 p1 -> Relu -> Conv 1x1 -> heatmaps
    (N,17,32,24), with its card."""
    from tests.helpers.onnx_builders import _save

    rng = np.random.default_rng(6)
    inits = [numpy_helper.from_array(rng.normal(0, 0.02, (16, 3, 8, 8)).astype(np.float32), "w0"),
             numpy_helper.from_array(rng.normal(0, 0.1, (16, 16, 4, 4)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.1, 16).astype(np.float32), "b1"),
             numpy_helper.from_array(rng.normal(0, 0.3, (17, 16, 1, 1)).astype(np.float32), "w2")]
    nodes = [helper.make_node("Conv", ["input", "w0"], ["c0"], name="stem", kernel_shape=[8, 8], strides=[8, 8]),
             helper.make_node("Relu", ["c0"], ["r0"], name="stem_relu"),
             helper.make_node("ConvTranspose", ["r0", "w1", "b1"], ["d1"], name="up", kernel_shape=[4, 4],
                              strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["d1"], ["r1"], name="up_relu"),
             helper.make_node("Conv", ["r1", "w2"], ["heatmaps"], name="head", kernel_shape=[1, 1])]
    graph = helper.make_graph(nodes, "pose_deconv", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                                   ["N", 3, 128, 96])],
                              [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, ["N", 17, 32, 24])],
                              initializer=inits)
    return _save(graph, tmp_path_factory.mktemp("subpixel") / "pose.onnx", CARD)


def test_quantize_int8_rewrites_deconvs_for_uint8(pose_with_deconv, tmp_path):
    from deploy.quantize.ptq import conv_weight_qdq_coverage, quantize_int8
    from edgepose.onnx_card import read_card

    calib = [np.random.default_rng(i).normal(size=(1, 3, 128, 96)).astype(np.float32) for i in range(4)]
    report = quantize_int8(pose_with_deconv, tmp_path / "u8.onnx", calib, activations="uint8")
    assert report.rewritten_deconvs == ["up"] and report.to_dict()["rewritten_deconvs"] == ["up"]
    ops = [n.op_type for n in onnx.load(report.dst).graph.node]
    assert "ConvTranspose" not in ops and "DepthToSpace" in ops
    assert "up_subpixel_conv" in conv_weight_qdq_coverage(report.dst)[0]  # quantized: QLinearConv in ORT
    assert read_card(report.dst) == CARD
    x = calib[0]
    want, got = run(onnx.load(pose_with_deconv), {"input": x})[0], run(onnx.load(report.dst), {"input": x})[0]
    assert np.linalg.norm(got - want) / np.linalg.norm(want) < 0.1
    # TensorRT's format (int8) and an explicit False keep the ConvTranspose
    for kwargs in (dict(activations="int8"), dict(activations="uint8", subpixel_deconv=False)):
        kept = quantize_int8(pose_with_deconv, tmp_path / "kept.onnx", calib, **kwargs)
        assert kept.rewritten_deconvs == []
        assert "ConvTranspose" in [n.op_type for n in onnx.load(kept.dst).graph.node]
    # a ConvTranspose named in exclude stays a (float) ConvTranspose
    excluded = quantize_int8(pose_with_deconv, tmp_path / "ex.onnx", calib, activations="uint8", exclude=["up"])
    assert excluded.rewritten_deconvs == [] and ("up", "user") in excluded.excluded


def test_cli_flag():
    from deploy.quantize.cli import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    base = ["m.onnx", "--out", "o.onnx", "--mode", "int8"]
    assert parser.parse_args(base).subpixel_deconv is None  # auto: on for uint8 activations
    assert parser.parse_args([*base, "--subpixel-deconv"]).subpixel_deconv is True
    assert parser.parse_args([*base, "--no-subpixel-deconv"]).subpixel_deconv is False


def test_cli_report_lists_rewritten_deconvs(pose_with_deconv, synth, tmp_path, capsys):
    import json

    from edgepose.cli import main

    out, report = tmp_path / "cli.onnx", tmp_path / "report.json"
    assert main(["quantize", pose_with_deconv, "--out", str(out), "--mode", "int8", "--activations", "uint8",
                 "--calib-ann", str(synth / "annotations" / "person_keypoints_val.json"),
                 "--calib-images", str(synth / "val"), "--num", "4", "--report", str(report)]) == 0
    assert "sub-pixel Conv: up" in capsys.readouterr().out
    assert json.loads(report.read_text())["rewritten_deconvs"] == ["up"]
