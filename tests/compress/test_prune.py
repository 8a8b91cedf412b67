"""Structured pruning: Lite-HRNet groups remove exactly what zeroing their inputs removes, Torch-Pruning's graph
engine hits FLOPs targets, pruned models save/load/export, and ``edgepose prune`` fine-tunes with distillation."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
import yaml

from compress.checkpoint import load_model, save_checkpoint
from compress.models import build_model
from compress.models.complexity import count_flops
from compress.prune.lite_hrnet_rules import lite_hrnet_groups
from compress.prune.structured import PruneSettings, _pick, prune_model
from edgepose.card import ModelCard
from edgepose.errors import ConfigError

CARD = ModelCard(input_size=(96, 128), mean=(0, 0, 0), std=(1, 1, 1), color="rgb", codec="msra",
                 heatmap_size=(24, 32), decode="dark")


def lively(model, seed: int = 0):
    """Random weights with real magnitudes (compress.models.random_init)."""
    from compress.models.random_init import realistic_random_weights

    return realistic_random_weights(model, seed)


@pytest.mark.parametrize("name", ["lite_hrnet_tiny", "naive_lite_hrnet_18"])
def test_lite_hrnet_group_pruning_equals_zeroing_the_readers(name):
    """Reference: removing a group's channels == keeping them but zeroing the weights that read them."""
    model = lively(build_model(name, num_keypoints=17, input_size=(96, 128))).double()  # float64: exact compare
    reference = copy.deepcopy(model)
    groups, ref_groups = lite_hrnet_groups(model), lite_hrnet_groups(reference)
    picks = _pick(groups, 0.4, "l2", global_pruning=False)
    assert sum(len(p) for p in picks) > 0
    for g, rg, channels in zip(groups, ref_groups, picks, strict=True):
        for m in rg.members:
            hi = rg.size if m.hi is None else m.hi
            local = [c - m.lo for c in channels if m.lo <= c < hi]
            if m.kind == "in" and local:
                m.module.weight.data[:, local] = 0
        g.prune(channels)
    x = torch.randn(2, 3, 128, 96, dtype=torch.float64)
    with torch.no_grad():
        got, want = model(x)["heatmaps"], reference(x)["heatmaps"]
    scale = want.abs().max().item()
    assert scale > 1e-2  # a live network, not zeros
    assert (got - want).abs().max().item() <= 1e-9 * scale  # float64 rounding only
    model.float(), reference.float()
    assert count_flops(model, (96, 128)) < count_flops(reference, (96, 128))


def test_pruned_lite_hrnet_runs_saves_loads_and_exports(tmp_path):
    import onnxruntime as ort

    from deploy.export import export_model

    model = lively(build_model("lite_hrnet_tiny", num_keypoints=17, input_size=(96, 128)))
    report = prune_model(model, PruneSettings(target_flops_ratio=0.3))
    assert report.engine == "lite_hrnet_groups" and 0.3 <= report.flops_reduction < 0.34
    assert model.keypoint_head.final_layer.out_channels == 17
    save_checkpoint(tmp_path / "p.pth", model, CARD)
    loaded, card, payload = load_model(tmp_path / "p.pth")
    assert payload["pruned_channels"] and card == CARD
    x = torch.randn(2, 3, 128, 96)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)["heatmaps"], model(x)["heatmaps"])
    path = export_model(loaded, card, tmp_path / "p.onnx")
    out = ort.InferenceSession(path).run(None, {"input": x.numpy()})[0]
    want = model(x)["heatmaps"].detach().numpy()
    assert np.abs(out - want).max() <= 1e-4 * max(1.0, np.abs(want).max())


def test_graph_engine_hits_the_flops_target_and_protects_layers():
    model = lively(build_model("simple_baseline_18", num_keypoints=17, input_size=(64, 64)))
    before = count_flops(model, (64, 64))
    report = prune_model(model, PruneSettings(target_flops_ratio=0.5, global_pruning=True,
                                              protect=["backbone.conv1"]))
    assert report.engine == "torch_pruning_graph"
    assert 0.5 <= 1 - count_flops(model, (64, 64)) / before < 0.55
    assert model.backbone.conv1.out_channels == 64 and model.keypoint_head.final_layer.out_channels == 17
    assert model(torch.randn(1, 3, 64, 64))["heatmaps"].shape == (1, 17, 16, 16)
    with pytest.raises(ConfigError, match="no layers named"):
        prune_model(build_model("simple_baseline_18", input_size=(64, 64)), PruneSettings(protect=["nope"]))


def test_unreachable_target_and_bad_settings_fail_clearly():
    with pytest.raises(ConfigError, match="at most"):
        prune_model(build_model("lite_hrnet_tiny", input_size=(96, 128)), PruneSettings(target_flops_ratio=0.9))
    with pytest.raises(ConfigError, match="importance"):
        PruneSettings(importance="random")
    with pytest.raises(ConfigError, match="training batches"):
        prune_model(build_model("lite_hrnet_tiny", input_size=(96, 128)), PruneSettings(importance="taylor"))


def test_prune_command_finetunes_with_the_original_as_teacher(synth, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from compress.config import from_dict
    from compress.train.config import TrainConfig
    from compress.train.loop import train
    from tests.compress.test_train import config_dict

    source = train(from_dict(TrainConfig, config_dict(synth, tmp_path / "src", epochs=1, max_iters_per_epoch=2)),
                   progress=False)["last"]
    job = {"checkpoint": source, "out_dir": str(tmp_path / "pruned"),
           "prune": {"target_flops_ratio": 0.2, "importance": "taylor", "steps": 2},
           "finetune": {"epochs": 1, "max_iters_per_epoch": 2, "distill_alpha": 0.5}}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-m", "edgepose", "prune", str(tmp_path / "job.yaml"), "--no-progress"],
                         cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads((tmp_path / "pruned" / "report.json").read_text())
    assert [s["step"] for s in report["steps"]] == [1, 2]
    assert 0.2 <= 1 - report["flops_after"] / report["flops_before"] < 0.24
    assert all(s["config"]["distill"]["teacher"] == source for s in report["steps"])
    model, _, payload = load_model(report["pruned"])
    assert payload["pruned_channels"] and count_flops(model, (96, 128)) == pytest.approx(report["flops_after"])


def test_fixed_ratio_and_per_layer_ratios_on_lite_hrnet():
    model = build_model("lite_hrnet_tiny", num_keypoints=17, input_size=(96, 128))
    sizes = {g.name: g.size for g in lite_hrnet_groups(model)}
    prune_model(model, PruneSettings(target_flops_ratio=None, pruning_ratio=0.5,
                                     per_layer_ratio={"backbone.stem": 0.0, "backbone.head_layer": 0.25}))
    after = {g.name: g.size for g in lite_hrnet_groups(model)}
    assert after["backbone.stem.conv1"] == sizes["backbone.stem.conv1"]
    assert after["backbone.stem.expand_conv"] == sizes["backbone.stem.expand_conv"]
    head = "backbone.head_layer.projects.last"
    assert after[head] == sizes[head] - int(0.25 * sizes[head])
    crw = next(n for n in sizes if n.endswith("cross_resolution_weighting"))
    assert after[crw] == sizes[crw] - int(0.5 * sizes[crw])
    with pytest.raises(ConfigError, match="exactly one"):
        PruneSettings(target_flops_ratio=0.3, pruning_ratio=0.3)
    with pytest.raises(ConfigError, match="match no prunable group"):
        prune_model(model, PruneSettings(per_layer_ratio={"backbone.nope": 0.1}))
