"""RTMPose trained from scratch: ``spp=False`` drops stage 4's SPP (an Identity keeps MMPose's module names) and the
RTMCC head's GAU starts as its residual (zero output projection); checkpoints rebuild the same architecture."""

from __future__ import annotations

import torch

from compress.checkpoint import load_model, save_checkpoint
from compress.models import build_model
from compress.models.cspnext import SPPBottleneck


def test_spp_false_replaces_only_the_spp_block(tmp_path):
    with_spp = build_model("rtmpose_t", 17, (96, 128))
    without = build_model("rtmpose_t", 17, (96, 128), spp=False)
    assert isinstance(with_spp.backbone.stage4[1], SPPBottleneck)
    assert isinstance(without.backbone.stage4[1], torch.nn.Identity)
    spp_params = sum(p.numel() for p in with_spp.backbone.stage4[1].parameters())
    names = {n for n, _ in with_spp.named_parameters() if not n.startswith("backbone.stage4.1.")}
    assert {n for n, _ in without.named_parameters()} == names  # every other name is MMPose's
    assert sum(p.numel() for p in with_spp.parameters()) - sum(p.numel() for p in without.parameters()) == spp_params
    assert without.arch["spp"] is False and "spp" not in with_spp.arch
    out = without.eval()(torch.zeros(2, 3, 128, 96))
    assert out["simcc_x"].shape == (2, 17, 192) and out["simcc_y"].shape == (2, 17, 256)
    # a checkpoint rebuilds the model without SPP, with the same outputs
    save_checkpoint(tmp_path / "m.pth", without, _card())
    loaded, _, _ = load_model(tmp_path / "m.pth")
    assert isinstance(loaded.backbone.stage4[1], torch.nn.Identity)
    x = torch.randn(1, 3, 128, 96)
    assert torch.equal(loaded.eval()(x)["simcc_x"], without(x)["simcc_x"])


def test_gau_starts_as_its_residual():
    head = build_model("rtmpose_t", 17, (96, 128)).keypoint_head
    assert torch.count_nonzero(head.gau.o.weight) == 0
    x = torch.randn(2, 17, head.gau.o.weight.shape[0])
    torch.testing.assert_close(head.gau.eval()(x), head.gau.res_scale(x))  # the attention branch adds 0


def _card():
    from edgepose.card import ModelCard

    return ModelCard.from_dict({"input_size": [96, 128], "mean": [123.675, 116.28, 103.53],
                                "std": [58.395, 57.12, 57.375], "color": "rgb", "codec": "simcc",
                                "simcc_split_ratio": 2.0,
                                "sigma": [3.46, 4.0], "decode": "none"})
