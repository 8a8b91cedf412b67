"""Fast Pose Distillation (Zhang et al., CVPR 2019): a frozen teacher's outputs supervise a student.

    loss = alpha * L(student, teacher) + (1 - alpha) * L(student, ground truth)

per stack of a multi-stack student, masked by the ground-truth target weights (alpha = 0.5 in the paper).
Supported pairs (checked by ``check_pair``; anything else is refused with the reason):
- heatmap teacher -> heatmap student, same or different heatmap size: the teacher's maps are resampled onto the
  student's grid with the codec's own pixel mapping (MSRA: x_t = x_s * w_t / w_s; UDP: x_t = x_s (w_t-1)/(w_s-1)).
- heatmap teacher -> SimCC student: the teacher's heatmaps are turned into 1-D x/y distributions (marginals,
  resampled to the SimCC bins) and matched by KL with a temperature.
- SimCC teacher -> SimCC student with the same bins: KL between temperature-softened distributions.
The teacher runs frozen in eval mode under ``torch.no_grad``; both models must take the same input crop (same
input size, mean/std, colour order and box padding), since one batch feeds both. Its outputs can be cached on disk
once and reused by every student (``cache:``, see ``compress.train.teacher_cache``), and student layers can imitate
teacher layers through adapters (``features:``, see ``compress.train.feature_distill``; needs the teacher online).

The teacher is a checkpoint written by ``edgepose train`` (``teacher: runs/x/last.pth``) or an MMPose checkpoint
of a known architecture (``teacher: {init: MMPOSE.pth, arch: hrnet_w32}``, the names of ``edgepose export --arch``):
built at the student's input size with the card MMPose's COCO config implies (``compress.models.mmpose_cards``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from compress.train.feature_distill import FeaturePair
from compress.train.losses import heatmap_mse, pose_loss
from edgepose.card import ModelCard
from edgepose.errors import ConfigError


@dataclass
class MMPoseTeacher:
    """``teacher: {init: MMPOSE.pth, arch: NAME}``: an MMPose checkpoint (1.x or 0.x layout) of architecture
    ``arch``."""

    init: str
    arch: str

    def __post_init__(self) -> None:
        from compress.models.mmpose_cards import MMPOSE_CODECS

        if self.arch not in MMPOSE_CODECS:
            raise ConfigError(f"distill.teacher.arch: no MMPose architecture {self.arch!r}; known: "
                              f"{sorted(MMPOSE_CODECS)}")


@dataclass
class DistillConfig:
    """The ``distill`` section of a training config."""

    teacher: MMPoseTeacher | str  # checkpoint written by edgepose train, or an MMPose one with its arch
    alpha: float = 0.5
    temperature: float = 1.0  # SimCC students: softens teacher and student distributions
    cache: str | None = None  # a folder for the teacher-output cache, shared by every student of this teacher
    features: list[FeaturePair] = field(default_factory=list)  # feature-level pairs (student layer <- teacher's)

    def __post_init__(self) -> None:
        if self.cache and self.features:
            raise ConfigError("distill.cache stores the teacher's outputs only: feature-level distillation "
                              "(distill.features) needs the teacher online; drop one of them")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"distill.alpha must be in [0, 1], got {self.alpha}")
        if self.temperature <= 0:
            raise ConfigError(f"distill.temperature must be positive, got {self.temperature}")


def teacher_checkpoint(teacher: MMPoseTeacher | str) -> str:
    """The file the teacher's weights come from."""
    return teacher.init if isinstance(teacher, MMPoseTeacher) else teacher


def load_teacher(teacher: MMPoseTeacher | str, student_card: ModelCard) -> tuple[torch.nn.Module, ModelCard]:
    """The teacher model (eval mode) and its card: an edgepose checkpoint's own, or for an MMPose checkpoint the card
    of MMPose's COCO config for its arch at the student's input size."""
    if isinstance(teacher, MMPoseTeacher):
        from compress.models.mmpose_import import load_mmpose_model

        return load_mmpose_model(teacher.init, teacher.arch, student_card.input_size)
    from compress.checkpoint import load_model

    model, card, _ = load_model(teacher)
    return model, card


def check_pair(teacher: ModelCard, student: ModelCard) -> None:
    """Refuse teacher/student pairs the distillation loss cannot compare, saying why."""
    same_crop = ("input_size", "mean", "std", "color", "bbox_padding")
    for name in same_crop:
        if getattr(teacher, name) != getattr(student, name):
            raise ConfigError(f"teacher and student must see the same crop: card field '{name}' differs "
                              f"({getattr(teacher, name)} vs {getattr(student, name)})")
    if teacher.num_keypoints != student.num_keypoints or teacher.keypoints != student.keypoints:
        raise ConfigError("teacher and student must predict the same keypoints in the same order")
    if teacher.codec == "simcc" and student.codec != "simcc":
        raise ConfigError("a SimCC teacher can only distil into a SimCC student (heatmaps cannot be recovered "
                          "from 1-D marginals)")
    if teacher.codec == "simcc" and teacher.simcc_split_ratio != student.simcc_split_ratio:
        raise ConfigError("SimCC teacher and student need the same simcc_split_ratio")


def _grid_1d(n_out: int, n_in: int, udp: bool, device) -> torch.Tensor:
    """Normalised (align_corners=True) sample positions of the student's cells on the teacher's axis."""
    positions = torch.arange(n_out, device=device, dtype=torch.float32)
    source = positions * ((n_in - 1) / max(n_out - 1, 1) if udp else n_in / n_out)
    return source / max(n_in - 1, 1) * 2 - 1


def resample_heatmaps(heatmaps: torch.Tensor, size: tuple[int, int], udp: bool) -> torch.Tensor:
    """(N, K, h_t, w_t) -> (N, K, h, w) with ``size`` = (w, h), sampling each student cell at its exact teacher
    coordinate under the codec's mapping (bilinear; zero beyond the teacher's last cell)."""
    n, k, h_t, w_t = heatmaps.shape
    w, h = size
    if (w, h) == (w_t, h_t):
        return heatmaps
    gx = _grid_1d(w, w_t, udp, heatmaps.device)
    gy = _grid_1d(h, h_t, udp, heatmaps.device)
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1).expand(n, h, w, 2)
    return F.grid_sample(heatmaps.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def heatmap_to_simcc(heatmaps: torch.Tensor, bins: tuple[int, int], udp: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher heatmaps (N, K, h, w) -> x and y marginals resampled to ``bins`` = (Wx, Wy) SimCC bins."""
    x = heatmaps.float().clamp_min(0).sum(dim=2, keepdim=True)  # (N, K, 1, w)
    y = heatmaps.float().clamp_min(0).sum(dim=3, keepdim=True).transpose(2, 3)  # (N, K, 1, h)
    x = resample_heatmaps(x, (bins[0], 1), udp)[:, :, 0]
    y = resample_heatmaps(y, (bins[1], 1), udp)[:, :, 0]
    return x, y


def soft_kl(student: torch.Tensor, teacher: torch.Tensor, weights: torch.Tensor, temperature: float,
            teacher_is_distribution: bool) -> torch.Tensor:
    """KL(teacher || student) over the last axis at a temperature (Hinton's T^2 scaling), weighted per keypoint."""
    log_p = F.log_softmax(student.float() / temperature, dim=-1)
    if teacher_is_distribution:
        q = teacher.float() / teacher.float().sum(-1, keepdim=True).clamp_min(1e-12)
        q = q ** (1.0 / temperature)
        q = q / q.sum(-1, keepdim=True).clamp_min(1e-12)
    else:
        q = F.softmax(teacher.float() / temperature, dim=-1)
    kl = (q * (torch.log(q.clamp_min(1e-12)) - log_p)).sum(-1)
    return (kl * weights).mean() * temperature**2


def teacher_loss(student_out: dict, teacher_out: dict, weights: torch.Tensor, student_card: ModelCard,
                 teacher_card: ModelCard, temperature: float) -> torch.Tensor:
    """The student-vs-teacher term, per student stack for heatmap students."""
    if student_card.codec != "simcc":
        target = resample_heatmaps(teacher_out["heatmaps"], student_card.heatmap_size, student_card.codec == "udp")
        stacks = student_out.get("intermediate") or [student_out["heatmaps"]]
        return sum(heatmap_mse(p, target, weights) for p in stacks)
    if teacher_card.codec == "simcc":
        return (soft_kl(student_out["simcc_x"], teacher_out["simcc_x"], weights, temperature, False)
                + soft_kl(student_out["simcc_y"], teacher_out["simcc_y"], weights, temperature, False))
    bins = (student_out["simcc_x"].shape[-1], student_out["simcc_y"].shape[-1])
    tx, ty = heatmap_to_simcc(teacher_out["heatmaps"], bins, teacher_card.codec == "udp")
    return (soft_kl(student_out["simcc_x"], tx, weights, temperature, True)
            + soft_kl(student_out["simcc_y"], ty, weights, temperature, True))


def distill_loss(student_out: dict, teacher_out: dict, targets: dict, weights: torch.Tensor,
                 student_card: ModelCard, teacher_card: ModelCard, config: DistillConfig) -> torch.Tensor:
    """alpha * L(student, teacher) + (1 - alpha) * L(student, ground truth).

    With alpha = 0 the teacher term is multiplied by exactly 0, so loss and gradients equal plain training's.
    """
    truth = pose_loss(student_out, targets, weights)
    taught = teacher_loss(student_out, teacher_out, weights, student_card, teacher_card, config.temperature)
    return config.alpha * taught + (1.0 - config.alpha) * truth


class FrozenTeacher(torch.nn.Module):
    """A teacher rebuilt from its checkpoint (ours or MMPose's), in eval mode, never updated, run under no_grad."""

    def __init__(self, teacher: MMPoseTeacher | str, student_card: ModelCard) -> None:
        super().__init__()
        model, card = load_teacher(teacher, student_card)
        check_pair(card, student_card)
        self.model, self.card = model.eval(), card
        for p in self.model.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> FrozenTeacher:
        """Stay in eval mode whatever the trainer asks (BatchNorm statistics are frozen)."""
        self.model.eval()
        return self

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The teacher's canonical outputs (no intermediate stacks)."""
        out = self.model(images)
        return {k: v for k, v in out.items() if k != "intermediate"}
