"""``cpu_bf16``: training convolutions run in bfloat16 on a CPU that has it natively, float32 everywhere else."""

from __future__ import annotations

import warnings

import pytest
import torch

from compress.config import from_dict
from compress.train import loop
from compress.train.config import TrainConfig
from compress.train.loop import cpu_autocast_dtype, train
from tests.compress.test_train import config_dict


def _config(tmp_path, **changes) -> TrainConfig:
    return from_dict(TrainConfig, config_dict(tmp_path, tmp_path / "run", **changes))


def test_dtype_follows_the_option_the_device_and_the_cpu(tmp_path, monkeypatch):
    monkeypatch.setattr(loop, "native_bf16", lambda: True)
    assert cpu_autocast_dtype(_config(tmp_path), torch.device("cpu")) is None  # off by default
    assert cpu_autocast_dtype(_config(tmp_path, cpu_bf16=True), torch.device("cpu")) is torch.bfloat16
    assert cpu_autocast_dtype(_config(tmp_path, cpu_bf16=True), torch.device("cuda")) is None
    monkeypatch.setattr(loop, "native_bf16", lambda: False)
    with pytest.warns(UserWarning, match="no native bfloat16"):
        assert cpu_autocast_dtype(_config(tmp_path, cpu_bf16=True), torch.device("cpu")) is None


def test_training_convolutions_run_in_bfloat16(synth, tmp_path, monkeypatch):
    monkeypatch.setattr(loop, "native_bf16", lambda: True)  # autocast emulates bf16 where the CPU lacks it
    seen: set[torch.dtype] = set()
    build = loop.build_for

    def build_with_probe(config, card):
        model = build(config, card)
        model.keypoint_head.final_layer.register_forward_hook(
            lambda module, args, out: seen.add(out.dtype) if module.training else None)
        return model

    monkeypatch.setattr(loop, "build_for", build_with_probe)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning on the forced-native path
        result = train(_config(synth, out_dir=str(tmp_path / "run"), cpu_bf16=True, epochs=1), progress=False)
    assert seen == {torch.bfloat16}  # float32 without the option: every other training test
    assert torch.isfinite(torch.tensor(result["train_loss"]))  # the loss is still computed in float32
