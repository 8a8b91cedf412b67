"""The model zoo: paper complexity, output contract of every registry entry, ONNX export, MMPose checkpoint keys.

RTMPose and HRNet against MMPose's own outputs: tests/compress/test_mmpose_architectures.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from compress.models import MODELS, build_model, count_flops, count_params, default_head, load_mmpose_checkpoint
from compress.models.mmpose_weights import to_mmpose_state_dict
from edgepose.errors import CheckpointError

W, H = 192, 256

# The Lite-HRNet paper's table (COCO, 256x192): parameters and FLOPs (MACs).
PAPER = {"lite_hrnet_18": (1.1e6, 0.2052), "lite_hrnet_30": (1.8e6, 0.3192)}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: on a shared 2-core machine, two OpenMP threads competing with other processes make
    each op wait at barriers (we measured a 0.06 s forward taking 9 s). Results do not depend on it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def randomize(model: nn.Module, seed: int = 0, inputs=None) -> nn.Module:
    """Random weights of order one and BN statistics calibrated on random images, like a trained model's: the
    outputs are neither near zero (a trivial comparison) nor exploding. Returns the model in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the calibration passes
            elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
        model.train()
        if inputs is None:
            w, h = getattr(model, "input_size", (W, H))
            inputs = torch.randn(2, 3, h, w, generator=gen)
        model(inputs)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = 0.1
    return model.eval()


def image(n: int = 1, w: int = W, h: int = H) -> torch.Tensor:
    return torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", sorted(PAPER))
def test_lite_hrnet_complexity_matches_paper(name):
    model = build_model(name)
    params, flops = count_params(model), count_flops(model, (W, H))
    paper_params, paper_flops = PAPER[name]
    msg = f"{name}: {params / 1e6:.3f}M params, {flops:.4f} GFLOPs; paper {paper_params / 1e6}M, {paper_flops} G"
    assert abs(params / paper_params - 1) < 0.05, msg
    assert abs(flops / paper_flops - 1) < 0.05, msg


def test_flop_counter_counts_depthwise_and_products():
    # A 1x1 conv 3 -> 8 then a depthwise 3x3: k*k*(Cin/groups)*Cout MACs per output pixel each.
    pw_dw = nn.Sequential(nn.Conv2d(3, 8, 1, bias=False), nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False))
    assert count_flops(pw_dw, (10, 10)) * 1e9 == pytest.approx(3 * 8 * 100 + 9 * 8 * 100)

    class Weighting(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1, bias=False)

        def forward(self, x):
            y = self.conv(x)
            return y * torch.sigmoid(y.mean((2, 3), keepdim=True))

    # 1x1 conv: 3*4 MACs per pixel; the product: one per output element (4 channels x 100 pixels).
    assert count_flops(Weighting(), (10, 10)) * 1e9 == pytest.approx(12 * 100 + 4 * 100)


def test_lite_hrnet_fusion_matches_official_in_place_arithmetic():
    """The official fuse loop (HRNet/Lite-HRNet, MMPose) adds into ``out[0]`` in place; ours is out of place."""
    from compress.models.lite_hrnet import LiteHRModule

    for module_type in ("LITE", "NAIVE"):
        x = [torch.randn(2, c, 16 // 2**i, 12 // 2**i, generator=torch.Generator().manual_seed(i))
             for i, c in enumerate((8, 16, 32))]
        module = randomize(LiteHRModule(3, 1, [8, 16, 32], 8, module_type), inputs=x)
        with torch.no_grad():
            ours = module(x)
            out = module.layers(x) if module_type == "LITE" else [b(s) for b, s in zip(module.layers, x, strict=True)]
            official = []
            for i in range(len(module.fuse_layers)):  # verbatim from mmpose/models/backbones/litehrnet.py
                y = out[0] if i == 0 else module.fuse_layers[i][0](out[0])
                for j in range(module.num_branches):
                    if i == j:
                        y += out[j]
                    else:
                        y += module.fuse_layers[i][j](out[j])
                official.append(module.relu(y))
        for a, b in zip(ours, official, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_forward_shapes(name):
    model = build_model(name).eval()  # its default head: SimCC for RTMPose, heatmaps for the others
    assert model.input_size == (W, H) and model.num_keypoints == 17 and model.head == default_head(name)
    if model.head == "heatmap":
        expected = {"heatmaps": (1, 17, H // 4, W // 4)}
        assert model.heatmap_size == (W // 4, H // 4) and model.simcc_split_ratio is None
    else:
        expected = {"simcc_x": (1, 17, W * 2), "simcc_y": (1, 17, H * 2)}
        assert model.heatmap_size is None and model.simcc_split_ratio == 2.0
    assert model.output_names == tuple(expected)
    with torch.inference_mode():
        out = model(image())
    assert {k: tuple(v.shape) for k, v in out.items()} == expected
    assert all(torch.isfinite(v).all() for v in out.values())


def test_hourglass_teacher_and_student_shapes():
    # The stack and channel counts are the point; a 64x128 input keeps the 8-stack teacher fast.
    size = (64, 128)
    teacher = build_model("hourglass", input_size=size)
    student = build_model("hourglass_student", num_keypoints=5, input_size=size)
    for model, stacks, channels in ((teacher, 8, 256), (student, 4, 128)):
        assert (model.stacks, model.channels) == (stacks, channels)
        assert len(model.backbone.hourglasses) == stacks
        assert model.backbone.stem[-1].block[-1].out_channels == channels
    assert count_params(teacher) > 7 * count_params(student)
    x = image(1, *size)
    student.train()
    with torch.no_grad():
        out = student(x)
    assert set(out) == {"heatmaps", "intermediate"} and len(out["intermediate"]) == 4
    assert all(t.shape == (1, 5, 32, 16) for t in out["intermediate"])
    assert out["intermediate"][-1] is out["heatmaps"]
    teacher.train()
    with torch.no_grad():
        assert len(teacher(x)["intermediate"]) == 8
    student.eval()
    with torch.no_grad():
        assert list(student(x)) == ["heatmaps"]


@pytest.mark.parametrize("name", ["lite_hrnet_tiny", "hourglass_student", "simple_baseline_18"])
def test_simcc_head_shapes(name):
    model = build_model(name, head="simcc", num_keypoints=3, input_size=(128, 192)).eval()
    assert model.output_names == ("simcc_x", "simcc_y") and model.heatmap_size is None
    assert model.simcc_split_ratio == 2.0
    with torch.inference_mode():
        out = model(image(1, 128, 192))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"simcc_x": (1, 3, 256), "simcc_y": (1, 3, 384)}
    ratio3 = build_model("lite_hrnet_tiny", head="simcc", simcc_split_ratio=3.0, num_keypoints=3)
    assert ratio3.keypoint_head.cls_x.out_features == W * 3 and ratio3.keypoint_head.cls_y.out_features == H * 3


def test_hourglass_simcc_intermediate_in_training_only():
    model = build_model("hourglass", stacks=2, channels=32, head="simcc", input_size=(64, 64)).train()
    with torch.no_grad():
        out = model(image(2, 64, 64))
    assert set(out) == {"simcc_x", "simcc_y", "intermediate"} and len(out["intermediate"]) == 1
    assert out["intermediate"][0].shape == (2, 17, 16, 16)


def test_arch_round_trip():
    model = randomize(build_model("hourglass", num_keypoints=5, input_size=(64, 128), head="simcc", stacks=2,
                                  channels=32, simcc_split_ratio=2.5))
    assert model.arch == {"name": "hourglass", "num_keypoints": 5, "input_size": (64, 128), "head": "simcc",
                          "stacks": 2, "channels": 32, "simcc_split_ratio": 2.5}
    rebuilt = build_model(**model.arch).eval()
    rebuilt.load_state_dict(model.state_dict())
    x = image(1, 64, 128)
    with torch.no_grad():
        for key, value in model(x).items():
            assert torch.equal(value, rebuilt(x)[key])
    direct = MODELS["lite_hrnet_tiny"](num_keypoints=4)
    assert build_model(**direct.arch).state_dict().keys() == direct.state_dict().keys()
    assert build_model("lite_hrnet_tiny", input_size=[96, 128]).arch["input_size"] == (96, 128)


def test_simple_baseline_deconv_channels_narrow_the_head_only():
    """deconv_channels 128: the three deconvolutions and the final 1x1 conv shrink, the ResNet does not; the arch
    records it (a checkpoint rebuilds it) and the 256-channel default records nothing (MMPose's layout)."""
    narrow = build_model("simple_baseline_18", input_size=(64, 96), deconv_channels=128)
    wide = build_model("simple_baseline_18", input_size=(64, 96))
    assert "deconv_channels" not in wide.arch and narrow.arch["deconv_channels"] == 128
    assert narrow.keypoint_head.final_layer.in_channels == 128 and wide.keypoint_head.final_layer.in_channels == 256
    assert count_params(narrow.backbone) == count_params(wide.backbone)
    assert count_flops(narrow, (64, 96)) < 0.75 * count_flops(wide, (64, 96))
    assert narrow(image(2, 64, 96))["heatmaps"].shape == (2, 17, 24, 16)
    assert build_model(**narrow.arch).state_dict().keys() == narrow.state_dict().keys()
    with pytest.raises(ValueError, match="deconv_channels"):
        build_model("simple_baseline_18", deconv_channels=0)


def test_build_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown model 'lite_hrnet_99'.*lite_hrnet_18.*simple_baseline_50"):
        build_model("lite_hrnet_99")
    with pytest.raises(TypeError, match="stacks"):
        build_model("lite_hrnet_18", stacks=4)
    with pytest.raises(TypeError, match="widht"):
        build_model("hourglass", widht=3)
    with pytest.raises(ValueError, match="unknown head 'regression'"):
        build_model("lite_hrnet_tiny", head="regression")
    with pytest.raises(ValueError, match="multiples of 32"):
        build_model("lite_hrnet_tiny", input_size=(190, 256))
    with pytest.raises(ValueError, match="simcc_split_ratio only applies"):
        build_model("lite_hrnet_tiny", simcc_split_ratio=2.0)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter (dynamo=False) is deprecated
def test_onnx_export_parity_lite_hrnet_tiny(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = randomize(build_model("lite_hrnet_tiny"))
    path = tmp_path / "tiny.onnx"
    torch.onnx.export(model, (image(),), str(path), input_names=["input"], output_names=list(model.output_names),
                      opset_version=17, dynamic_axes={"input": {0: "batch"}, "heatmaps": {0: "batch"}}, dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = image(2)
    (onnx_out,) = session.run(["heatmaps"], {"input": x.numpy()})
    with torch.no_grad():
        torch_out = model(x)["heatmaps"].numpy()
    assert onnx_out.shape == (2, 17, H // 4, W // 4)
    assert np.abs(torch_out).max() > 0.1, "the comparison would be trivial"
    np.testing.assert_allclose(onnx_out, torch_out, rtol=0, atol=1e-4)


# Keys of MMPose's LiteHRNet / HeatmapHead / ResNet (mmpose/models/backbones/litehrnet.py, resnet.py) with shapes.
MMPOSE_LITE_HRNET_18 = {
    "backbone.stem.conv1.conv.weight": (32, 3, 3, 3),
    "backbone.stem.conv1.bn.running_mean": (32,),
    "backbone.stem.branch1.0.conv.weight": (16, 1, 3, 3),
    "backbone.stem.branch1.1.conv.weight": (16, 16, 1, 1),
    "backbone.stem.expand_conv.conv.weight": (32, 16, 1, 1),
    "backbone.stem.depthwise_conv.bn.weight": (32,),
    "backbone.stem.linear_conv.conv.weight": (16, 32, 1, 1),
    "backbone.transition0.0.0.weight": (32, 1, 3, 3),
    "backbone.transition0.0.2.weight": (40, 32, 1, 1),
    "backbone.transition0.1.0.0.weight": (32, 1, 3, 3),
    "backbone.transition0.1.0.2.weight": (80, 32, 1, 1),
    "backbone.transition1.2.0.2.weight": (160, 80, 1, 1),
    "backbone.stage0.0.layers.0.cross_resolution_weighting.conv1.conv.weight": (7, 60, 1, 1),
    "backbone.stage0.0.layers.0.cross_resolution_weighting.conv2.bn.weight": (60,),
    "backbone.stage0.0.layers.1.depthwise_convs.1.conv.weight": (40, 1, 3, 3),
    "backbone.stage0.0.layers.0.spatial_weighting.0.conv1.conv.weight": (5, 20, 1, 1),
    "backbone.stage0.0.layers.0.spatial_weighting.0.conv1.conv.bias": (5,),
    "backbone.stage0.1.fuse_layers.0.1.0.weight": (40, 80, 1, 1),
    "backbone.stage0.1.fuse_layers.1.0.0.0.weight": (40, 1, 3, 3),
    "backbone.stage0.1.fuse_layers.1.0.0.2.weight": (80, 40, 1, 1),
    "backbone.stage1.3.layers.1.cross_resolution_weighting.conv1.conv.weight": (17, 140, 1, 1),
    "backbone.stage2.1.layers.0.cross_resolution_weighting.conv1.conv.weight": (37, 300, 1, 1),
    "backbone.stage2.1.fuse_layers.3.0.2.3.weight": (320,),
    "backbone.head_layer.projects.0.depthwise_conv.conv.weight": (320, 1, 3, 3),
    "backbone.head_layer.projects.0.pointwise_conv.conv.weight": (160, 320, 1, 1),
    "backbone.head_layer.projects.3.pointwise_conv.bn.weight": (40,),
    "head.final_layer.weight": (17, 40, 1, 1),
    "head.final_layer.bias": (17,),
}
MMPOSE_SIMPLE_BASELINE_18 = {
    "backbone.conv1.weight": (64, 3, 7, 7),
    "backbone.bn1.running_var": (64,),
    "backbone.layer1.0.conv2.weight": (64, 64, 3, 3),
    "backbone.layer2.0.downsample.0.weight": (128, 64, 1, 1),
    "backbone.layer4.1.bn2.bias": (512,),
    "head.deconv_layers.0.weight": (512, 256, 4, 4),
    "head.deconv_layers.1.running_mean": (256,),
    "head.deconv_layers.6.weight": (256, 256, 4, 4),
    "head.final_layer.weight": (17, 256, 1, 1),
}


@pytest.mark.parametrize(("name", "expected"), [("lite_hrnet_18", MMPOSE_LITE_HRNET_18),
                                                ("simple_baseline_18", MMPOSE_SIMPLE_BASELINE_18)])
def test_our_names_are_mmpose_names(name, expected):
    state = to_mmpose_state_dict(build_model(name))
    assert {k: tuple(state[k].shape) for k in expected if k in state} == expected


def test_naive_lite_hrnet_names_in_mmpose_0x_layout():
    naive = to_mmpose_state_dict(build_model("naive_lite_hrnet_18"), version=0)
    assert naive["backbone.stage0.0.layers.1.0.branch2.0.conv.weight"].shape == (40, 40, 1, 1)
    assert "keypoint_head.final_layer.weight" in naive


@pytest.mark.parametrize(("name", "version"), [("lite_hrnet_tiny", 1), ("simple_baseline_18", 1),
                                               ("naive_lite_hrnet_18", 0)])
def test_mmpose_checkpoint_round_trip(tmp_path, name, version):
    source = randomize(build_model(name, input_size=(96, 128)), seed=3)
    path = tmp_path / "mmpose.pth"
    torch.save({"meta": {"mmpose_version": "1.3.2" if version else "0.29.0"},
                "state_dict": to_mmpose_state_dict(source, version)}, path)
    target = build_model(name, input_size=(96, 128)).eval()
    report = load_mmpose_checkpoint(target, path)
    assert not (report.missing or report.unexpected or report.mismatched)
    x = image(1, 96, 128)
    with torch.no_grad():
        assert torch.equal(source(x)["heatmaps"], target(x)["heatmaps"])


def test_mmpose_checkpoint_of_another_architecture_fails_clearly():
    tiny = to_mmpose_state_dict(build_model("lite_hrnet_tiny"))
    with pytest.raises(CheckpointError, match=r"does not match LiteHRNetPose lite_hrnet_18.*missing: backbone\."):
        load_mmpose_checkpoint(build_model("lite_hrnet_18"), {"state_dict": tiny})
    resnet = to_mmpose_state_dict(build_model("simple_baseline_18"))
    with pytest.raises(CheckpointError, match=r"no backbone key matches.*unexpected: backbone\.bn1"):
        load_mmpose_checkpoint(build_model("lite_hrnet_tiny"), resnet, strict=False)
    # Another number of keypoints: strict fails naming the head; strict=False loads the backbone and reports it.
    five = build_model("lite_hrnet_tiny", num_keypoints=5)
    with pytest.raises(CheckpointError, match=r"another shape.*final_layer\.bias: \(17,\) vs \(5,\)"):
        load_mmpose_checkpoint(five, tiny)
    report = load_mmpose_checkpoint(five, tiny, strict=False)
    assert report.mismatched and not report.missing and not report.unexpected
    assert torch.equal(five.backbone.stem.conv1.conv.weight, tiny["backbone.stem.conv1.conv.weight"])
