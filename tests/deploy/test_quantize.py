"""Post-training quantization: Q/DQ coverage vs the report, calibration errors, INT8/FP16 accuracy and card,
calibration methods, sensitivity exclusion, and no output left behind by a broken input."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from deploy.quantize.calibration import CalibrationImages
from deploy.quantize.ptq import conv_weight_qdq_coverage, convert_fp16, quantize_int8
from edgepose.backends.onnxruntime import OnnxRuntimeBackend, OrtOptions
from edgepose.card import ModelCard
from edgepose.errors import InputError, ModelError
from edgepose.onnx_card import read_card

CARD = ModelCard(input_size=(96, 128), mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375), color="rgb",
                 codec="msra", heatmap_size=(24, 32), decode="dark", name="tiny")
USER_EXCLUDED = "/model/backbone/stem/expand_conv/conv/Conv"
# Relative L2 error of the heatmaps against FP32 on the calibration crops. Unrelated heatmaps of this model differ
# by about 1.4 (two unit-variance maps); the int8 model measures about 0.15, the fp16 one about 0.001.
INT8_TOLERANCE, FP16_TOLERANCE = 0.3, 0.01


def _unit_activations(model, images) -> None:
    """Rescale every Conv so that its output has unit standard deviation on ``images`` (LSUV-style, one pass).

    The zoo's init (std 0.001 weights) gives a random model heatmaps of about 1e-20, on which any error measure
    is meaningless; after this the heatmaps have unit variance and every layer carries signal.
    """
    import torch

    def rescale(conv, _, out):
        std = out.std()
        if std < 1e-6:  # a constant output (dead ReLU input): nothing to normalise
            return out
        with torch.no_grad():
            conv.weight /= std
            if conv.bias is not None:
                conv.bias /= std
        return out / std

    hooks = [m.register_forward_hook(rescale) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        with torch.no_grad():
            model(images)
    finally:
        for hook in hooks:
            hook.remove()


@pytest.fixture(scope="module")
def fp32(tmp_path_factory, synth) -> str:
    """lite_hrnet_tiny at 96x128, 17 keypoints, non-trivial weights, exported with its card."""
    import torch

    from compress.models import build_model
    from deploy.export import export_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a second job shares the 2 cores: more threads only oversubscribe them
    try:
        torch.manual_seed(0)
        model = build_model("lite_hrnet_tiny", num_keypoints=17, input_size=CARD.input_size).eval()
        _unit_activations(model, torch.randn(4, 3, 128, 96))
        return export_model(model, CARD, tmp_path_factory.mktemp("quant") / "fp32.onnx")
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def calib(fp32, synth) -> CalibrationImages:
    return CalibrationImages(fp32, synth / "annotations" / "person_keypoints_val.json", synth / "val", num=8)


@pytest.fixture(scope="module")
def int8(fp32, calib, tmp_path_factory):
    dst = tmp_path_factory.mktemp("int8") / "int8.onnx"
    return quantize_int8(fp32, dst, calib, method="minmax", exclude=[USER_EXCLUDED])


def _heatmaps(path, batch: np.ndarray) -> np.ndarray:
    with OnnxRuntimeBackend(path, OrtOptions(threads=1)) as backend:
        return backend.infer({CARD.input_name: batch})["heatmaps"]


def _relative_error(path, reference: str, batch: np.ndarray) -> float:
    ref = _heatmaps(reference, batch)
    return float(np.linalg.norm(_heatmaps(path, batch) - ref) / np.linalg.norm(ref))


def _crops(calib: CalibrationImages) -> np.ndarray:
    return np.concatenate([calib.item(i) for i in range(len(calib))])


# ------------------------------------------------------------------------------------------- (a) coverage


def test_every_conv_weight_not_excluded_is_quantized(int8):
    covered, plain = conv_weight_qdq_coverage(int8.dst)
    reasons = dict(int8.excluded)
    assert reasons[USER_EXCLUDED] == "user"
    assert list(reasons.values()).count("first conv") == 1 and list(reasons.values()).count("head") == 1
    assert reasons["/model/keypoint_head/final_layer/Conv"] == "head"
    assert set(plain) == set(reasons), "float Convs must be exactly the reported ones"
    assert len(covered) == int8.quantized_convs == 162 - 3
    assert int8.num_calibration == 8 and int8.size_bytes == os.path.getsize(int8.dst)
    assert json.loads(json.dumps(int8.to_dict()))["excluded"][0] == {"node": int8.excluded[0][0],
                                                                      "reason": int8.excluded[0][1]}


def test_unknown_excluded_node_is_refused(fp32, calib, tmp_path):
    with pytest.raises(InputError, match="no_such_node"):
        quantize_int8(fp32, tmp_path / "q.onnx", calib, exclude=["no_such_node"])
    assert not (tmp_path / "q.onnx").exists()


# ------------------------------------------------------------------------------------------- (b) calibration


def test_calibration_crops_are_the_runtimes(fp32, calib, synth):
    from edgepose.io import read_image
    from edgepose.preprocess import Cropper

    data = json.loads((synth / "annotations" / "person_keypoints_val.json").read_text())
    first_image = min(data["images"], key=lambda i: i["id"])
    ann = min((a for a in data["annotations"] if a["image_id"] == first_image["id"] and a["num_keypoints"] > 0),
              key=lambda a: a["id"])
    x, y, w, h = ann["bbox"]
    box = np.clip([x, y, x + w, y + h], 0, [first_image["width"] - 1, first_image["height"] - 1] * 2)
    expected, _ = Cropper(CARD)(read_image(synth / "val" / first_image["file_name"]), box[None])
    feeds = [calib.rewind().get_next() for _ in range(2)]
    assert list(feeds[0]) == ["input"] and feeds[0]["input"].shape == (1, 3, 128, 96)
    np.testing.assert_array_equal(feeds[0]["input"], expected)
    assert len(calib) == 8 and len(list(calib.rewind())) == 8  # at most num, all of them on every pass
    again = CalibrationImages(fp32, synth / "annotations" / "person_keypoints_val.json", synth / "val", num=8)
    np.testing.assert_array_equal(_crops(again), _crops(calib))


def test_calibration_without_images_fails_clearly(fp32, synth, tmp_path):
    data = json.loads((synth / "annotations" / "person_keypoints_val.json").read_text())
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({**data, "images": [], "annotations": []}))
    with pytest.raises(InputError, match="calibration needs at least one image"):
        CalibrationImages(fp32, empty, synth / "val")
    with pytest.raises(InputError, match="calibration needs at least one image"):
        quantize_int8(fp32, tmp_path / "q.onnx", [])
    assert not (tmp_path / "q.onnx").exists()


def test_calibration_of_the_wrong_size_fails_clearly(fp32, tmp_path):
    from tests.helpers.onnx_builders import conv_heatmap_model

    with pytest.raises(InputError, match=r"\[1, 3, 64, 48\].*\[1, 3, 128, 96\]"):
        CalibrationImages(fp32, tensors=[np.zeros((1, 3, 64, 48), np.float32)])
    with pytest.raises(InputError, match=r"\[1, 3, 64, 48\].*\[1, 3, 128, 96\]"):
        quantize_int8(fp32, tmp_path / "q.onnx", np.zeros((2, 3, 64, 48), np.float32))
    # a model whose graph takes 48x64 crops while its card says 96x128
    small = conv_heatmap_model(tmp_path / "small.onnx", CARD, input_size=(48, 64))
    with pytest.raises(ModelError, match=r"\[\?,3,64,48\].*input_size \[96, 128\]"):
        CalibrationImages(small, tensors=[np.zeros((1, 3, 128, 96), np.float32)])
    assert not (tmp_path / "q.onnx").exists()


# ------------------------------------------------------------------------------------------- (c) accuracy


def test_int8_and_fp16_run_in_the_runtime_close_to_fp32(fp32, int8, calib, synth, tmp_path):
    from edgepose.io import read_image
    from edgepose.pipeline import PoseEstimator

    fp16 = convert_fp16(fp32, tmp_path / "fp16.onnx")
    assert fp16.variant == "fp16" and fp16.quantized_convs == 162
    assert {reason for _, reason in fp16.excluded} == {"fp32 op Resize"}  # the only FP32_OPS in this model
    crops = _crops(calib)
    for report, tolerance in ((int8, INT8_TOLERANCE), (fp16, FP16_TOLERANCE)):
        assert read_card(report.dst) == CARD
        error = _relative_error(report.dst, fp32, crops)
        assert error < tolerance, f"{report.variant}: heatmaps differ from FP32 by {error:.3f} (relative L2)"
        frame = read_image(synth / "val" / "000000.jpg")
        with PoseEstimator(report.dst, backend_options={"threads": 1}) as estimator:
            assert estimator.binding.input.dtype == np.float32  # FP16 keeps float32 inputs
            poses = estimator(frame, boxes=[[40, 30, 120, 200]])
        assert poses.xy.shape == (1, 17, 2) and np.isfinite(poses.xy).all()


# ------------------------------------------------------------------------------------------- (d) methods


@pytest.mark.parametrize("method", ["percentile"])  # minmax: the int8 fixture; entropy: its own test below
def test_each_calibration_method_runs(fp32, calib, tmp_path, method):
    report = quantize_int8(fp32, tmp_path / f"{method}.onnx", calib, method=method)
    assert report.method == method and report.quantized_convs == 162 - 2
    error = _relative_error(report.dst, fp32, _crops(calib))
    assert error < INT8_TOLERANCE, f"{method}: heatmaps differ from FP32 by {error:.3f}"
    with pytest.raises(InputError, match="must be one of"):
        quantize_int8(fp32, tmp_path / "x.onnx", calib, method="kl")


def test_entropy_calibration_is_not_minmax_in_disguise(fp32, int8, calib, tmp_path):
    """ORT's quantize_static entropy default (128 bins, 128 quantized) returns the MinMax ranges; ours searches."""
    import onnx
    from onnx import numpy_helper

    def scales(path):
        return {i.name: numpy_helper.to_array(i) for i in onnx.load(path).graph.initializer
                if i.name.endswith("_scale") and numpy_helper.to_array(i).size == 1}

    entropy = quantize_int8(fp32, tmp_path / "entropy.onnx", calib, method="entropy")
    minmax, ent = scales(int8.dst), scales(entropy.dst)
    shared = [k for k in minmax if k in ent]
    assert shared and sum(not np.isclose(minmax[k], ent[k]) for k in shared) > len(shared) // 2
    assert sum(ent[k] < minmax[k] for k in shared) > len(shared) // 2  # mostly clipped tails
    # KL-optimal clipping on a random network, whose activations have no long tails to cut, costs more than on a
    # trained one (benchmarks/results/compression.json measures trained models)
    assert entropy.method == "entropy" and _relative_error(entropy.dst, fp32, _crops(calib)) < 2 * INT8_TOLERANCE


def test_uint8_activations_for_onnx_runtime_cpus(fp32, calib, tmp_path):
    import onnx

    report = quantize_int8(fp32, tmp_path / "u8.onnx", calib, activations="uint8")
    graph = onnx.load(report.dst).graph
    zero_points = {i.name: i for i in graph.initializer}
    act_q = [n for n in graph.node if n.op_type == "QuantizeLinear"]
    dtypes = {zero_points[n.input[2]].data_type for n in act_q if len(n.input) > 2 and n.input[2] in zero_points}
    assert dtypes == {onnx.TensorProto.UINT8}  # asymmetric uint8 activations (U8S8)
    assert _relative_error(report.dst, fp32, _crops(calib)) < INT8_TOLERANCE
    with pytest.raises(InputError, match="activations must be"):
        quantize_int8(fp32, tmp_path / "x.onnx", calib, activations="int4")


# ------------------------------------------------------------------------------------------- (e) sensitivity


def test_sensitivity_excludes_low_sqnr_convs(fp32, calib, tmp_path):
    threshold = 20.0  # this random model's Convs measure 0-25 dB against FP32 (error accumulates with depth)
    report = quantize_int8(fp32, tmp_path / "sens.onnx", calib, sensitivity_sqnr_db=threshold,
                           sensitivity_samples=4)
    weak = {n: r for n, r in report.excluded if r.startswith("sensitivity")}
    assert weak, "a 20 dB threshold must exclude at least one Conv of this model"
    for node, reason in weak.items():
        db = float(re.fullmatch(r"sensitivity: (-?\d+\.\d) dB", reason).group(1))
        assert db == pytest.approx(report.sqnr_db[node], abs=0.05) and db < threshold
    kept = {n for n, db in report.sqnr_db.items() if db >= threshold}
    assert kept and not kept & set(weak)
    covered, plain = conv_weight_qdq_coverage(report.dst)
    assert set(plain) == {n for n, _ in report.excluded} and len(covered) == report.quantized_convs


# ------------------------------------------------------------------------------------------- (f) broken input


def test_truncated_model_fails_clearly_and_writes_nothing(fp32, tmp_path):
    data = Path(fp32).read_bytes()
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(data[: len(data) // 2])
    batch = [np.zeros((1, 3, 128, 96), np.float32)]
    with pytest.raises(ModelError, match="corrupt or truncated"):
        quantize_int8(broken, tmp_path / "q.onnx", batch)
    with pytest.raises(ModelError, match="corrupt or truncated"):
        convert_fp16(broken, tmp_path / "h.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.onnx"]


def test_cli_fp16_writes_model_and_report(fp32, tmp_path, capsys):
    from edgepose.cli import main

    out, report = tmp_path / "cli.onnx", tmp_path / "report.json"
    assert main(["quantize", str(fp32), "--out", str(out), "--mode", "fp16", "--report", str(report)]) == 0
    assert "FP16" in capsys.readouterr().out and read_card(out) == CARD
    assert json.loads(report.read_text())["variant"] == "fp16"
    assert main(["quantize", str(fp32), "--out", str(out), "--mode", "int8"]) == 2  # no calibration data
    assert "--calib-ann" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- (g) scope


def _fused_op_types(path, tmp_path) -> set[str]:
    """Op types of the graph ONNX Runtime's CPU provider actually runs (Q/DQ folded into QLinear* kernels)."""
    import onnx
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return {n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node}


@pytest.mark.parametrize("scope", ["dense"])  # "conv" differs only in quantizing the depthwise Convs as well
def test_partial_scope_keeps_the_rest_float_and_matches_fp32(fp32, calib, tmp_path, scope):
    import onnx

    from deploy.quantize.ptq import depthwise_convs

    report = quantize_int8(fp32, tmp_path / f"{scope}.onnx", calib, activations="uint8", scope=scope)
    assert report.scope == scope and report.to_dict()["scope"] == scope
    graph = onnx.load(report.dst).graph
    grouped = set(depthwise_convs(graph))
    reasons = dict(report.excluded)
    covered, plain = conv_weight_qdq_coverage(report.dst)
    assert set(plain) == set(reasons) and len(covered) == report.quantized_convs
    float_weights = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
    convs = {n.name: n for n in graph.node if n.op_type == "Conv"}
    if scope == "dense":
        assert grouped and {n for n, r in reasons.items() if r == "depthwise"} == grouped
        assert all(convs[n].input[1] in float_weights for n in grouped)  # FP32 weights: a float Conv
        assert report.quantized_convs == len(convs) - len(grouped) - 2  # first conv and head float as well
    else:
        assert report.quantized_convs == len(convs) - 2 and not grouped & set(plain)
    fused = _fused_op_types(report.dst, tmp_path)
    assert "QLinearConv" in fused
    # only Convs run in INT8: the adds, multiplies, concatenations and sigmoids between them stay float (with
    # scope "conv" ONNX Runtime itself folds a GlobalAveragePool between two quantized Convs into QLinear form)
    assert not fused & {"QLinearAdd", "QLinearMul", "QLinearConcat", "QLinearSigmoid"}
    error = _relative_error(report.dst, fp32, _crops(calib))
    assert error < INT8_TOLERANCE, f"scope {scope}: heatmaps differ from FP32 by {error:.3f} (relative L2)"
    with pytest.raises(InputError, match="scope must be one of"):
        quantize_int8(fp32, tmp_path / "x.onnx", calib, scope="pointwise")


def test_scope_all_runs_elementwise_ops_in_int8(int8, tmp_path):
    """The contrast to the partial scopes above: the default quantizes the ops between the Convs too."""
    assert int8.scope == "all"
    assert {"QLinearConv", "QLinearAdd"} <= _fused_op_types(int8.dst, tmp_path)
