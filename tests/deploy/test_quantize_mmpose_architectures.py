"""INT8 and FP16 of RTMPose-t (issue 16): its export quantizes, runs in the runtime and stays close to FP32, with
the card MMPose's config implies. HRNet is plain convolutions, which test_quantize covers; this file once ran it
too (INT8 relative error 0.066, FP16 0.0005) and dropped it to keep the suite under 10 minutes."""

from __future__ import annotations

import numpy as np
import pytest

from deploy.quantize.calibration import CalibrationImages
from deploy.quantize.ptq import conv_weight_qdq_coverage, convert_fp16, quantize_int8
from edgepose.backends.onnxruntime import OnnxRuntimeBackend, OrtOptions
from edgepose.onnx_card import read_card
from tests.deploy.test_quantize import FP16_TOLERANCE, _unit_activations

SIZE = (64, 64)  # small crops keep the test quick on a CPU


@pytest.fixture(scope="module", params=["rtmpose_t"])  # HRNet is plain convs: test_quantize covers those
def exported(request, tmp_path_factory, synth) -> tuple[str, str, CalibrationImages]:
    """(arch, FP32 ONNX with MMPose's card, calibration crops); weights rescaled to unit activations."""
    import torch

    from compress.models import build_model
    from compress.models.mmpose_cards import mmpose_card
    from deploy.export import export_model

    arch = request.param
    torch.manual_seed(0)
    model = build_model(arch, num_keypoints=17, input_size=SIZE).eval()
    _unit_activations(model, torch.randn(4, 3, SIZE[1], SIZE[0]))
    path = export_model(model, mmpose_card(arch, SIZE), tmp_path_factory.mktemp(arch) / "fp32.onnx")
    calib = CalibrationImages(path, synth / "annotations" / "person_keypoints_val.json", synth / "val", num=8)
    return arch, path, calib


def _outputs(path: str, batch: np.ndarray) -> dict[str, np.ndarray]:
    with OnnxRuntimeBackend(path, OrtOptions(threads=1)) as backend:
        return backend.infer({"input": batch})


def _relative_error(path: str, reference: str, batch: np.ndarray) -> float:
    """Relative L2 error over all outputs (heatmaps, or SimCC's x and y logits together)."""
    got, want = _outputs(path, batch), _outputs(reference, batch)
    diff = sum(float(np.sum((got[k] - want[k]) ** 2)) for k in want)
    return (diff / sum(float(np.sum(v**2)) for v in want.values())) ** 0.5


def _run_in_runtime(path: str, synth) -> None:
    from edgepose.io import read_image
    from edgepose.pipeline import PoseEstimator

    with PoseEstimator(path, backend_options={"threads": 1}) as estimator:
        poses = estimator(read_image(synth / "val" / "000000.jpg"), boxes=[[40, 30, 120, 200]])
    assert poses.xy.shape == (1, 17, 2) and np.isfinite(poses.xy).all()


def test_fp16_runs_close_to_fp32(exported, synth, tmp_path):
    arch, fp32, calib = exported
    report = convert_fp16(fp32, tmp_path / "fp16.onnx")
    assert read_card(report.dst) == read_card(fp32)
    if arch == "rtmpose_t":  # ScaleNorm's ReduceL2 (in the head's mlp and the GAU) stays FP32
        assert {reason for _, reason in report.excluded} == {"fp32 op ReduceL2"}
    crops = np.concatenate([calib.item(i) for i in range(len(calib))])
    error = _relative_error(report.dst, fp32, crops)
    assert error < FP16_TOLERANCE, f"{arch} fp16: outputs differ from FP32 by {error:.4f} (relative L2)"
    _run_in_runtime(report.dst, synth)


def test_int8_runs_with_every_conv_quantized(exported, synth, tmp_path):
    arch, fp32, calib = exported
    report = quantize_int8(fp32, tmp_path / "int8.onnx", calib)
    assert read_card(report.dst) == read_card(fp32)
    covered, plain = conv_weight_qdq_coverage(report.dst)
    assert len(covered) == report.quantized_convs > 0
    assert set(plain) <= {name for name, _ in report.excluded}  # only the first conv / head stay float
    _run_in_runtime(report.dst, synth)
    crops = np.concatenate([calib.item(i) for i in range(len(calib))])
    error = _relative_error(report.dst, fp32, crops)
    # RTMPose-t with random weights sits above test_quantize.INT8_TOLERANCE: about 0.36 at 64x64 (0.29 at
    # 96x128), and 0.33 with INT8 on the Convs alone, so it is the CSPNeXt backbone's many thin layers adding
    # up, not one bad layer or op. Trained weights are needed to judge it; here it must stay well apart from
    # unrelated outputs (0.71 between two crops' SimCC logits).
    assert error < 0.5, f"{arch} int8: outputs differ from FP32 by {error:.3f} (relative L2)"
