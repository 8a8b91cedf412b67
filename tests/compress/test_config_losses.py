"""Config loading (unknown keys, types, nesting) and the training losses against hand computations."""

from __future__ import annotations

import pytest
import torch

from compress.config import from_dict, load_yaml
from compress.train.config import TrainConfig
from compress.train.loop import lr_at
from compress.train.losses import heatmap_mse, pose_loss, simcc_kl
from edgepose.errors import ConfigError

CARD = {"input_size": [192, 256], "mean": [0, 0, 0], "std": [1, 1, 1], "color": "rgb", "codec": "msra",
        "heatmap_size": [48, 64]}


def test_nested_config_and_unknown_keys(tmp_path):
    cfg = from_dict(TrainConfig, {"card": CARD, "data": {"batch_size": 8}, "optim": {"lr": 0.01}, "epochs": 3})
    assert cfg.data.batch_size == 8 and cfg.optim.lr == 0.01 and cfg.model.name == "lite_hrnet_18"
    assert cfg.model_card().heatmap_size == (48, 64)
    with pytest.raises(ConfigError, match=r"config\.optim: unknown key\(s\) \['lrr'\]"):
        from_dict(TrainConfig, {"card": CARD, "data": {}, "optim": {"lrr": 1}})
    with pytest.raises(ConfigError, match=r"config\.data\.batch_size: expected int"):
        from_dict(TrainConfig, {"card": CARD, "data": {"batch_size": "eight"}})
    with pytest.raises(ConfigError, match="missing required key"):
        from_dict(TrainConfig, {"data": {}})
    with pytest.raises(ConfigError, match="optim.schedule"):
        from_dict(TrainConfig, {"card": CARD, "data": {}, "optim": {"schedule": "poly"}})
    (tmp_path / "bad.yaml").write_text("card: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(TrainConfig, tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(TrainConfig, tmp_path / "missing.yaml")


def test_lr_schedule():
    cfg = from_dict(TrainConfig, {"card": CARD, "data": {}, "epochs": 10,
                                  "optim": {"lr": 1.0, "warmup_iters": 10, "warmup_ratio": 0.1, "min_lr_ratio": 0.0}})
    assert lr_at(cfg, 0, 110) == pytest.approx(0.1)
    assert lr_at(cfg, 5, 110) == pytest.approx(0.55)
    assert lr_at(cfg, 10, 110) == pytest.approx(1.0)
    assert lr_at(cfg, 60, 110) == pytest.approx(0.5)
    assert lr_at(cfg, 110, 110) == pytest.approx(0.0, abs=1e-12)
    step = from_dict(TrainConfig, {"card": CARD, "data": {}, "epochs": 10,
                                   "optim": {"lr": 1.0, "warmup_iters": 0, "schedule": "step", "milestones": [5, 8]}})
    assert [lr_at(step, i * 10, 100) for i in (0, 4, 5, 7, 8, 9)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_heatmap_mse_by_hand():
    pred = torch.tensor([[[[1.0, 2.0]], [[0.0, 0.0]]]])  # (1, 2, 1, 2)
    target = torch.tensor([[[[0.0, 0.0]], [[1.0, 1.0]]]])
    weights = torch.tensor([[1.0, 0.5]])
    # keypoint 0: mean(1, 4) = 2.5; keypoint 1: mean(1, 1) = 1 -> weighted 0.5; mean over (N, K) = 1.5
    assert heatmap_mse(pred, target, weights).item() == pytest.approx(1.5)
    stacks = {"heatmaps": pred, "intermediate": [pred, pred]}
    assert pose_loss(stacks, {"heatmaps": target}, weights).item() == pytest.approx(3.0)


def test_simcc_kl_by_hand():
    pred = torch.tensor([[[0.0, 0.1]]])
    target = torch.tensor([[[1.0, 0.0]]])
    weights = torch.ones(1, 1)
    p = torch.softmax(pred * 10, -1)
    q = torch.softmax(target * 10, -1)
    expected = (q * (q.log() - p.log())).sum()
    assert simcc_kl(pred, target, weights).item() == pytest.approx(expected.item(), rel=1e-6)
    assert simcc_kl(target, target, weights).item() == pytest.approx(0.0, abs=1e-7)
