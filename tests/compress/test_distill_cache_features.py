"""Teacher-output cache (reuse, key invalidation, damage) and feature-level distillation under the trainer."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from compress.checkpoint import read_checkpoint
from compress.config import from_dict
from compress.train.config import TrainConfig
from compress.train.feature_distill import FeaturePair, feature_loss
from compress.train.loop import train
from compress.train.teacher_cache import TeacherCache
from edgepose.errors import ConfigError
from tests.compress.test_train import config_dict


@pytest.fixture(scope="module")
def teacher(synth, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("teacher")
    return train(from_dict(TrainConfig, config_dict(synth, out, epochs=1, max_iters_per_epoch=2)),
                 progress=False)["last"]


def notes(out: Path) -> str:
    return (out / "notes.txt").read_text()


def test_cache_is_filled_once_then_read_by_the_next_student(synth, teacher, tmp_path):
    cache = tmp_path / "cache"
    first = config_dict(synth, tmp_path / "a", epochs=2, distill={"teacher": teacher, "cache": str(cache)})
    filled = train(from_dict(TrainConfig, first), progress=False)
    assert "0 batches read, 6 computed" in notes(tmp_path / "a")  # 3 iterations x 2 epochs
    # the next student with the same data, crop, augmentation and seed meets the same items: all read from disk
    reused = train(from_dict(TrainConfig, first | {"out_dir": str(tmp_path / "b")}), progress=False)
    assert "6 batches read, 0 computed" in notes(tmp_path / "b")
    # the first run computed its teacher online; the second read float16 copies: same training within rounding
    assert reused["train_loss"] == pytest.approx(filled["train_loss"], rel=1e-2)
    assert reused["train_loss"] != filled["train_loss"]  # it really read the rounded copies


def test_cached_rows_equal_the_teacher_within_float16(tmp_path):
    cache = TeacherCache(tmp_path, {"x": 1}, num_items=5, shapes={"heatmaps": (2, 4, 3)})
    cache.prepare(0)
    cache.open(0)
    assert cache.lookup([0, 1]) is None
    out = {"heatmaps": torch.rand(2, 2, 4, 3)}
    cache.store([3, 1], out)
    got = cache.lookup([3, 1])
    assert torch.allclose(got["heatmaps"], out["heatmaps"], atol=1e-3)  # float16: 2^-11 relative
    assert cache.lookup([1, 2]) is None  # one item missing -> recompute the whole batch
    cache.close()


def test_key_changes_with_any_input_and_damage_is_rebuilt(tmp_path):
    base = {"teacher_sha256": "a", "seed": 0, "augment": {"rotation": 30}}
    keys = {TeacherCache(tmp_path, parts, 4, {"h": (1,)}).key for parts in
            (base, base | {"seed": 1}, base | {"teacher_sha256": "b"}, base | {"augment": {"rotation": 0}})}
    assert len(keys) == 4
    cache = TeacherCache(tmp_path, base, 4, {"h": (1,)})
    cache.prepare(0)
    cache.open(0)
    cache.store([0, 1, 2, 3], {"h": torch.ones(4, 1)})
    cache.close()
    path = Path(cache.dir) / "epoch_0000.h.npy"
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with pytest.warns(UserWarning, match="damaged"):
        cache.prepare(0)
    cache.open(0)
    assert cache.lookup([0]) is None  # rebuilt empty: recomputed, never read from the broken file
    cache.close()


def test_feature_loss_by_hand():
    adapted = [torch.ones(1, 2, 2, 2)]
    teacher = [torch.zeros(1, 2, 4, 4)]
    teacher[0][:, :, 0, 0] = 3.0  # resize of a constant 1 is 1 everywhere: 15 cells of (1-0)^2, 1 cell of (1-3)^2
    loss = feature_loss(adapted, teacher, [FeaturePair("s", "t", weight=0.5)])
    assert loss.item() == pytest.approx(0.5 * (15 * 1 + 4) / 16)


def test_feature_distillation_trains_adapters_and_resumes(synth, teacher, tmp_path):
    pairs = [{"student": "backbone.stage1", "teacher": "backbone.stage2", "weight": 1.0}]
    spec = config_dict(synth, tmp_path / "f", epochs=2, distill={"teacher": teacher, "features": pairs})
    result = train(from_dict(TrainConfig, spec), progress=False)
    payload = read_checkpoint(tmp_path / "f" / "last.pth")
    assert "convs.0.weight" in payload["adapters"]
    assert not any(k.startswith("convs.") for k in payload["state_dict"])  # adapters stay out of the model
    with open(tmp_path / "f" / "log.csv", encoding="utf-8") as fh:
        assert np.isfinite(float(list(csv.DictReader(fh))[-1]["train_loss"]))
    resumed = train(from_dict(TrainConfig, spec | {"epochs": 3}), resume=True, progress=False)
    assert resumed["epoch"] == 3 and result["epoch"] == 2
    bad = config_dict(synth, tmp_path / "g", distill={"teacher": teacher, "features": [
        {"student": "backbone.nope", "teacher": "backbone.stage2"}]})
    with pytest.raises(ConfigError, match="no module named"):
        train(from_dict(TrainConfig, bad), progress=False)
    with pytest.raises(ConfigError, match="needs the teacher online"):
        from_dict(TrainConfig, config_dict(synth, tmp_path / "h", distill={
            "teacher": teacher, "features": pairs, "cache": str(tmp_path / "c")}))
