"""Pruning the MMPose architectures (issue 16): RTMPose-t (its gated attention unit left whole, with the reason) and
HRNet-W32 (multi-branch fuse layers through Torch-Pruning's graph) get narrower, still run, reload and export."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
import yaml

from compress.checkpoint import load_model, save_checkpoint
from compress.models import build_model
from compress.models.complexity import count_flops
from compress.models.mmpose_cards import mmpose_card
from compress.prune.structured import PruneSettings, prune_model
from tests.compress.test_prune import lively

SIZE = (64, 64)  # small crops keep HRNet-W32 quick on a CPU


@pytest.mark.parametrize("arch", ["rtmpose_t", "hrnet_w32"])
def test_pruned_mmpose_arch_runs_reloads_and_exports(tmp_path, arch):
    import onnxruntime as ort

    from deploy.export import export_model

    model = lively(build_model(arch, num_keypoints=17, input_size=SIZE))
    gau_before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("keypoint_head.gau.")}
    before = count_flops(model, SIZE)
    report = prune_model(model, PruneSettings(target_flops_ratio=None, pruning_ratio=0.3))
    assert report.engine == "torch_pruning_graph" and report.pruned_layers > 0
    assert count_flops(model, SIZE) == pytest.approx(report.flops_after) and report.flops_after < 0.8 * before
    assert report.params_after < report.params_before
    if arch == "rtmpose_t":  # the GAU is left whole, saying why; the keypoint outputs keep their sizes
        assert list(report.left_unpruned) == ["keypoint_head.gau"]
        assert "gated attention unit" in report.left_unpruned["keypoint_head.gau"]
        assert "Torch-Pruning" in report.to_dict()["left_unpruned"]["keypoint_head.gau"]
        gau_after = {k: v for k, v in model.state_dict().items() if k.startswith("keypoint_head.gau.")}
        assert all(torch.equal(gau_after[k], v) for k, v in gau_before.items())
        unpruned = build_model(arch, input_size=SIZE)
        assert model.backbone.stem[0].conv.out_channels < unpruned.backbone.stem[0].conv.out_channels
    else:  # nothing in HRNet needs leaving whole: its fuse layers are adds Torch-Pruning follows
        assert report.left_unpruned == {}
        assert any(k.startswith("backbone.stage4.0.fuse_layers.") for k in model.pruned_channels)
    card = mmpose_card(arch, SIZE)
    save_checkpoint(tmp_path / "p.pth", model, card)
    loaded, loaded_card, payload = load_model(tmp_path / "p.pth")
    assert payload["pruned_channels"] and loaded_card == card
    x = torch.randn(2, 3, SIZE[1], SIZE[0])
    with torch.no_grad():
        want = model(x)
        got = loaded(x)
    for name in card.output_names:
        torch.testing.assert_close(got[name], want[name])
    path = export_model(loaded, card, tmp_path / "p.onnx")
    outs = ort.InferenceSession(path).run(list(card.output_names), {"input": x.numpy()})
    for name, out in zip(card.output_names, outs, strict=True):
        ref = want[name].numpy()
        assert out.shape == ref.shape and np.abs(out - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())


def test_prune_command_logs_and_records_what_it_left_whole(tmp_path, capsys):
    """``edgepose prune`` on an RTMPose-t checkpoint: the GAU's reason is printed and in report.json."""
    from compress.prune.job import run
    from tests.compress.test_train import config_dict

    model = lively(build_model("rtmpose_t", num_keypoints=17, input_size=SIZE))
    card = mmpose_card("rtmpose_t", SIZE)
    config = config_dict(tmp_path, tmp_path / "train", model={"name": "rtmpose_t"},
                         card={"input_size": list(SIZE), "codec": "simcc", "simcc_split_ratio": 2.0})
    save_checkpoint(tmp_path / "src.pth", model, card, config=config)
    job = {"checkpoint": str(tmp_path / "src.pth"), "out_dir": str(tmp_path / "pruned"),
           "prune": {"target_flops_ratio": None, "pruning_ratio": 0.25}, "finetune": {"epochs": 0}}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    assert run(argparse.Namespace(config=str(tmp_path / "job.yaml"), no_progress=True)) == 0
    printed = capsys.readouterr().out
    assert "left unpruned: keypoint_head.gau: RTMCC head's gated attention unit" in printed
    report = yaml.safe_load((tmp_path / "pruned" / "report.json").read_text())
    assert list(report["left_unpruned"]) == ["keypoint_head.gau"] and report["flops_after"] < report["flops_before"]
    assert report["steps"][0]["left_unpruned"] == report["left_unpruned"]
