"""Every shipped training config loads, and its model matches its card."""

from __future__ import annotations

from pathlib import Path

import pytest

from compress.config import load_yaml
from compress.train.config import TrainConfig
from compress.train.loop import build_for

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "compress" / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_loads_and_builds(path):
    config = load_yaml(TrainConfig, path)
    model = build_for(config, config.model_card())  # raises on a card/model mismatch
    assert model.num_keypoints == config.model_card().num_keypoints


def test_there_are_configs_for_coco_and_synthetic():
    names = {p.stem for p in CONFIGS}
    assert any(n.startswith("coco_") for n in names) and any(n.startswith("synthetic_") for n in names)
