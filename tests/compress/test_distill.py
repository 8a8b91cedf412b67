"""Fast Pose Distillation: the loss by hand, alpha = 0 equals plain training, teacher resampling, pair checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from compress.train.distill import (
    DistillConfig,
    check_pair,
    distill_loss,
    heatmap_to_simcc,
    resample_heatmaps,
)
from compress.train.losses import pose_loss
from edgepose.card import ModelCard
from edgepose.codecs import build_codec
from edgepose.errors import ConfigError

CARD = ModelCard(input_size=(96, 128), mean=(0, 0, 0), std=(1, 1, 1), color="rgb", codec="msra",
                 heatmap_size=(24, 32), decode="dark", keypoints=("a", "b"))


def test_loss_equals_hand_computation():
    student = {"heatmaps": torch.tensor([[[[1.0, 2.0]], [[0.0, 0.0]]]])}  # (1, 2, 1, 2)
    teacher = {"heatmaps": torch.tensor([[[[1.0, 1.0]], [[0.0, 2.0]]]])}
    truth = {"heatmaps": torch.tensor([[[[0.0, 0.0]], [[1.0, 1.0]]]])}
    weights = torch.tensor([[1.0, 0.5]])
    card = dataclasses.replace(CARD, heatmap_size=(2, 1))
    # vs teacher: k0 mean(0, 1) = 0.5, k1 mean(0, 4) = 2 * 0.5 = 1 -> mean 0.75
    # vs truth:   k0 mean(1, 4) = 2.5, k1 mean(1, 1) = 1 * 0.5 = 0.5 -> mean 1.5
    loss = distill_loss(student, teacher, truth, weights, card, card, DistillConfig("t.pth", alpha=0.3))
    assert loss.item() == pytest.approx(0.3 * 0.75 + 0.7 * 1.5)


def test_alpha_zero_is_plain_training_exactly():
    from compress.models import build_model

    torch.manual_seed(0)
    student = build_model("lite_hrnet_tiny", num_keypoints=2, input_size=(96, 128))
    images = torch.randn(2, 3, 128, 96)
    truth = {"heatmaps": torch.rand(2, 2, 32, 24)}
    weights = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    teacher = {"heatmaps": torch.rand(2, 2, 64, 48)}  # a bigger teacher grid: resampled inside the loss

    def grads(loss_fn):
        student.zero_grad()
        loss = loss_fn(student(images))
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in student.parameters()]

    plain_loss, plain_grads = grads(lambda out: pose_loss(out, truth, weights))
    config = DistillConfig("t.pth", alpha=0.0)
    distil_loss, distil_grads = grads(lambda out: distill_loss(out, teacher, truth, weights, CARD, CARD, config))
    assert torch.equal(plain_loss, distil_loss)
    assert all(torch.equal(a, b) for a, b in zip(plain_grads, distil_grads, strict=True))
    half = DistillConfig("t.pth", alpha=0.5)
    assert grads(lambda out: distill_loss(out, teacher, truth, weights, CARD, CARD, half))[0] != plain_loss


@pytest.mark.parametrize("codec", ["msra", "udp"])
def test_resampled_teacher_peaks_where_the_student_grid_says(codec):
    """A teacher heatmap on a 48x64 grid, resampled to the student's 24x32, decodes to the same input pixels."""
    rng = np.random.default_rng(0)
    kp = rng.uniform([20, 25], [76, 103], (3, 2, 2))
    teacher_card = dataclasses.replace(CARD, codec=codec, heatmap_size=(48, 64), sigma=3.0)
    student_card = dataclasses.replace(CARD, codec=codec)
    targets, _ = build_codec(teacher_card).encode(kp, np.ones((3, 2)))
    resampled = resample_heatmaps(torch.from_numpy(targets["heatmaps"]), student_card.heatmap_size, codec == "udp")
    assert resampled.shape == (3, 2, 32, 24)
    decoded, _ = build_codec(student_card).decode({"heatmaps": resampled.numpy()})
    assert np.abs(decoded - kp).max() < 0.3  # bilinear resampling of a sigma-3 Gaussian: measured < 0.1 px
    naive = torch.nn.functional.interpolate(torch.from_numpy(targets["heatmaps"]), size=(32, 24), mode="bilinear")
    naive_xy, _ = build_codec(student_card).decode({"heatmaps": naive.numpy()})
    if codec == "msra":  # the usual interpolate call is off by half a teacher pixel for MSRA's mapping
        assert np.abs(naive_xy - kp).max() > 0.5


def test_heatmap_teacher_to_simcc_marginals():
    kp = np.array([[[30.3, 70.6], [60.0, 40.2]]])
    teacher_card = dataclasses.replace(CARD, heatmap_size=(48, 64), sigma=2.0)
    targets, _ = build_codec(teacher_card).encode(kp, np.ones((1, 2)))
    x, y = heatmap_to_simcc(torch.from_numpy(targets["heatmaps"]), (192, 256), udp=False)
    assert x.shape == (1, 2, 192) and y.shape == (1, 2, 256)
    assert np.abs(x.argmax(-1).numpy() / 2.0 - kp[..., 0]).max() <= 1.0
    assert np.abs(y.argmax(-1).numpy() / 2.0 - kp[..., 1]).max() <= 1.0


def test_unsupported_pairs_are_refused():
    with pytest.raises(ConfigError, match="input_size"):
        check_pair(dataclasses.replace(CARD, input_size=(192, 256), heatmap_size=(48, 64)), CARD)
    simcc = dataclasses.replace(CARD, codec="simcc", heatmap_size=None, simcc_split_ratio=2.0, decode="none",
                                output_names=())
    with pytest.raises(ConfigError, match="SimCC teacher"):
        check_pair(simcc, CARD)
    with pytest.raises(ConfigError, match="same keypoints"):
        check_pair(dataclasses.replace(CARD, keypoints=("a", "c")), CARD)
    check_pair(CARD, simcc)  # heatmap teacher -> SimCC student is supported
    with pytest.raises(ConfigError, match="alpha"):
        DistillConfig("t.pth", alpha=1.5)
