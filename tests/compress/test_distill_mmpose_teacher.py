"""An MMPose checkpoint as the distillation teacher: ``teacher: {init: MMPOSE.pth, arch: NAME}`` (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from compress.config import from_dict
from compress.models import build_model
from compress.models.mmpose_cards import mmpose_card
from compress.models.mmpose_weights import to_mmpose_state_dict
from compress.train.config import TrainConfig
from compress.train.distill import DistillConfig, FrozenTeacher, MMPoseTeacher, distill_loss
from compress.train.loop import train
from edgepose.errors import CheckpointError, ConfigError
from tests.compress.test_prune import lively
from tests.compress.test_train import config_dict

SIZE = (64, 64)  # small crops keep HRNet-W32 quick on a CPU
SIMCC_CARD = {"input_size": list(SIZE), "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375],
              "color": "rgb", "codec": "simcc", "simcc_split_ratio": 2.0, "sigma": [2.83, 2.83], "decode": "none"}


def mmpose_checkpoint(path: Path, arch: str, seed: int = 0) -> tuple[Path, torch.nn.Module]:
    """A checkpoint in MMPose 1.x's layout (a 'meta' entry, its key names) of a seeded model with real magnitudes."""
    model = lively(build_model(arch, num_keypoints=17, input_size=SIZE), seed).eval()
    torch.save({"meta": {"mmpose_version": "1.3.2"}, "state_dict": to_mmpose_state_dict(model, version=1)}, path)
    return path, model


def test_config_reads_an_mmpose_teacher_and_still_a_plain_one(tmp_path):
    mm = from_dict(DistillConfig, {"teacher": {"init": "rtm.pth", "arch": "rtmpose_t"}, "alpha": 0.5})
    assert mm.teacher == MMPoseTeacher(init="rtm.pth", arch="rtmpose_t")
    assert from_dict(DistillConfig, {"teacher": "runs/t/last.pth"}).teacher == "runs/t/last.pth"
    with pytest.raises(ConfigError, match="no MMPose architecture 'rtmpose_x'.*known: .*'rtmpose_t'"):
        from_dict(DistillConfig, {"teacher": {"init": "rtm.pth", "arch": "rtmpose_x"}})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['card'\]"):
        from_dict(DistillConfig, {"teacher": {"init": "rtm.pth", "arch": "rtmpose_t", "card": "c.yaml"}})
    with pytest.raises(ConfigError, match=r"missing required key\(s\) \['arch'\]"):
        from_dict(DistillConfig, {"teacher": {"init": "rtm.pth"}})


@pytest.mark.parametrize("arch", ["rtmpose_t", "hrnet_w32"])
def test_mmpose_teacher_is_the_checkpoint_with_its_config_card(tmp_path, arch):
    """Same outputs as the model the checkpoint was written from; the card of MMPose's config at the student's size;
    a SimCC student learns from it (SimCC -> SimCC by KL, heatmap -> SimCC by the marginals' KL)."""
    path, source = mmpose_checkpoint(tmp_path / f"{arch}.pth", arch, seed=1)
    student_card = from_dict(TrainConfig, config_dict(tmp_path, tmp_path, card=SIMCC_CARD)).model_card()
    teacher = FrozenTeacher(MMPoseTeacher(init=str(path), arch=arch), student_card)
    assert teacher.card == mmpose_card(arch, SIZE, name=f"mmpose:{arch} ({arch}.pth)")
    images = torch.randn(2, 3, SIZE[1], SIZE[0])
    got, want = teacher(images), source(images)
    assert set(got) == {k for k in want if k != "intermediate"}
    assert all(torch.allclose(got[k], want[k], atol=1e-5) for k in got)
    student = build_model("rtmpose_t", num_keypoints=17, input_size=SIZE)
    out = student(images)
    targets = {"simcc_x": torch.rand(2, 17, 128), "simcc_y": torch.rand(2, 17, 128)}
    loss = distill_loss(out, got, targets, torch.ones(2, 17), student_card, teacher.card,
                        DistillConfig(MMPoseTeacher(str(path), arch)))
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0
    assert student.keypoint_head.cls_x.weight.grad.abs().sum() > 0


def test_mmpose_teacher_of_another_arch_names_the_one_that_fits(tmp_path):
    path, _ = mmpose_checkpoint(tmp_path / "t.pth", "rtmpose_t")
    card = from_dict(TrainConfig, config_dict(tmp_path, tmp_path, card=SIMCC_CARD)).model_card()
    with pytest.raises(CheckpointError, match="It fits --arch rtmpose_t"):
        FrozenTeacher(MMPoseTeacher(init=str(path), arch="rtmpose_s"), card)


def test_distill_run_with_an_mmpose_teacher_and_its_cache(synth, tmp_path):
    """The trainer end to end: an MMPose RTMPose-t teacher, an RTMPose-t student, the teacher-output cache keyed by
    the checkpoint and its arch."""
    path, _ = mmpose_checkpoint(tmp_path / "rtm.pth", "rtmpose_t")
    cfg = config_dict(synth, tmp_path / "run", card=SIMCC_CARD, model={"name": "rtmpose_t"}, epochs=1,
                      max_iters_per_epoch=2,
                      distill={"teacher": {"init": str(path), "arch": "rtmpose_t"}, "cache": str(tmp_path / "c")})
    result = train(from_dict(TrainConfig, cfg), progress=False)
    assert result["epoch"] == 1 and 0.0 <= result["AP"] <= 1.0 and torch.isfinite(torch.tensor(result["train_loss"]))
    assert "0 batches read, 2 computed" in (tmp_path / "run" / "notes.txt").read_text()
