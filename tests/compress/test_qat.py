"""Quantization-aware training: BN folding is exact, fake quantization is INT8-faithful, the export carries Q/DQ
on every convolution, and QAT fine-tuning with distillation runs under the trainer and reloads."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
import torch

from compress.checkpoint import load_model, read_checkpoint
from compress.config import from_dict
from compress.models import build_model
from compress.qat import FakeQuantConv, calibrate, conv_bn_pairs, prepare_qat
from compress.train.config import TrainConfig
from compress.train.loop import train
from tests.compress.test_prune import CARD, lively
from tests.compress.test_train import config_dict


def test_folding_is_exact_and_fake_quant_is_int8():
    model = lively(build_model("lite_hrnet_tiny", num_keypoints=17, input_size=(96, 128)))
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert len(conv_bn_pairs(model)) == n_bn  # in Lite-HRNet every BN follows a conv
    x = torch.randn(2, 3, 128, 96)
    with torch.no_grad():
        want = model(x)["heatmaps"]
    qat = prepare_qat(copy.deepcopy(model))  # raises if folding changed the function
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in qat.modules())
    convs = [m for m in qat.modules() if isinstance(m, FakeQuantConv)]
    assert len(convs) == sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    calibrate(qat, [x])
    with torch.no_grad():
        got = qat.eval()(x)["heatmaps"]
    assert torch.isfinite(got).all() and not torch.equal(got, want)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1)  # one layer: INT8 noise of about 1% of the signal
    fq, xi = FakeQuantConv(copy.deepcopy(conv)), torch.relu(torch.randn(2, 64, 32, 32))
    calibrate(fq, [xi])
    with torch.no_grad():
        rel = ((fq.eval()(xi) - conv(xi)).norm() / conv(xi).norm()).item()
    assert 1e-3 < rel < 0.03
    w = convs[5]._quant_weight()  # weights land on an INT8 grid per output channel
    steps = w / (w.abs().amax(dim=(1, 2, 3), keepdim=True) / 127)
    assert torch.allclose(steps, steps.round(), atol=1e-3)


def test_qat_model_exports_qdq_on_every_conv(tmp_path):
    import onnxruntime as ort

    from deploy.export import export_model

    model = prepare_qat(lively(build_model("lite_hrnet_tiny", num_keypoints=17, input_size=(96, 128))))
    x = torch.randn(2, 3, 128, 96, generator=torch.Generator().manual_seed(0))
    calibrate(model, [x])
    model.eval()
    path = export_model(model, CARD, tmp_path / "qat.onnx")
    graph = onnx.load(path).graph
    producers = {o: n for n in graph.node for o in n.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert convs and all(producers[c.input[1]].op_type == "DequantizeLinear" for c in convs)
    assert all(producers[c.input[0]].op_type == "DequantizeLinear" for c in convs)
    fused = ort.InferenceSession(path).run(None, {"input": x.numpy()})[0]  # INT8 kernels: runs, finite
    assert fused.shape == (2, 17, 32, 24) and np.isfinite(fused).all()

    # Numerical faithfulness on a shallow net: in a deep random one, a single activation that float summation
    # order puts on the other side of a rounding boundary moves one INT8 step and is amplified chaotically.
    class Shallow(torch.nn.Module):
        input_size = (96, 128)

        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, 2, 1), torch.nn.BatchNorm2d(16),
                                            torch.nn.ReLU(), torch.nn.Conv2d(16, 17, 3, 2, 1))

        def forward(self, images):
            return {"heatmaps": self.body(images)}

    shallow = prepare_qat(lively(Shallow()))
    calibrate(shallow, [x])
    shallow.eval()
    small = export_model(shallow, CARD, tmp_path / "shallow.onnx")
    options = ort.SessionOptions()  # unfused: ONNX Runtime evaluates the Q/DQ graph op by op, in float
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    out = ort.InferenceSession(small, options).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        want = shallow(x)["heatmaps"].numpy()
    assert np.linalg.norm(out - want) / np.linalg.norm(want) < 1e-3  # the graph is the fake-quantized model


def test_qat_finetuning_with_distillation_reloads(synth, tmp_path):
    teacher = train(from_dict(TrainConfig, config_dict(synth, tmp_path / "float", epochs=1, max_iters_per_epoch=2)),
                    progress=False)["last"]
    spec = config_dict(synth, tmp_path / "qat", epochs=1, max_iters_per_epoch=2, qat=True,
                       model={"init": teacher}, distill={"teacher": teacher, "alpha": 0.5})
    result = train(from_dict(TrainConfig, spec), progress=False)
    assert np.isfinite(result["train_loss"])
    assert read_checkpoint(result["last"])["qat"] is True
    model, _, _ = load_model(result["last"])
    assert any(isinstance(m, FakeQuantConv) for m in model.modules())
    assert model.backbone.stem.conv1.conv.input_amax.item() > 0  # ranges learned in training, saved, reloaded
    with pytest.raises(RuntimeError, match="BN folding"):
        broken = lively(build_model("lite_hrnet_tiny", input_size=(96, 128)))
        broken.backbone.stem.conv1.bn.register_forward_hook(lambda m, i, o: o + i[0])  # BN input reused
        prepare_qat(broken)
