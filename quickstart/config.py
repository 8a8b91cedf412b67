"""The schedules of ``edgepose quickstart``: one dataclass per stage, gathered in a ``QuickstartProfile``.

Two profiles ship, both on the synthetic set's "easy" level at a 64x96 crop (the hard level stays for the
distillation benchmark). ``FAST`` (``--fast``; 204 s on 2 cores on 2026-12-02, over the 3-minute goal that day):
400 train images, 200 val persons (40 gave an AP too noisy to compare students), a 16-epoch teacher trained with
bfloat16 autocast where the CPU has it (AP 0.515 in 103 s; float32: AP 0.508 in 142 s, same machine) and
4-epoch students distilled from the teacher's heatmaps plus a feature hint (distillation gains over seeds and
teachers from -2.5 to +5.7 AP points: not steady at 4 epochs; see the README). ``DEFAULT``: 1600 images, a 20-epoch
teacher (AP 0.77) and 8-epoch students, 13-19 minutes (README: the measured runs). Any other schedule is
a YAML file of the same shape (``--config FILE``; unknown keys are refused by path)::

    name: mine
    data: {train: 500, val: 60}
    teacher: {model: simple_baseline_18, epochs: 4}
    student: {model: lite_hrnet_tiny, epochs: 6, alpha: 0.5}
    prune: {target_flops_ratio: 0.3, epochs: 2}

Every stage is keyed on its own section (plus the shared crop ``card``, ``augment`` and ``seed`` for the training
stages), so editing one section reruns that stage and the ones after it only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from edgepose.errors import ConfigError

# The crop every model of the quickstart shares (teacher and student must see the same one to distil).
CARD = {"input_size": [96, 128], "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375],
        "color": "rgb", "codec": "msra", "heatmap_size": [24, 32], "sigma": 1.5, "decode": "dark",
        "blur_kernel_size": 7}
# Milder geometry than MMPose's 210-epoch defaults: short CPU schedules learn faster with it.
AUGMENT = {"scale_range": [0.75, 1.25], "rotation": 30.0, "rotate_prob": 0.5, "shift": 0.1, "half_body_prob": 0.1}


@dataclass
class DataStage:
    """The synthetic dataset (``compress.data.synthetic.generate``)."""

    train: int = 1000
    val: int = 100
    seed: int = 0
    workers: int | None = None  # generator processes; None: one per core (at most 8). Not part of the stage key.
    level: str = "hard"  # "easy": one large upright person facing the camera (compress.data.synthetic.LEVELS)

    def __post_init__(self) -> None:
        if self.train < 1 or self.val < 1:
            raise ConfigError(f"data.train and data.val must be at least 1, got {self.train} and {self.val}")
        if self.level not in ("easy", "hard"):
            raise ConfigError(f"data.level must be 'easy' or 'hard', got {self.level!r}")


@dataclass
class TrainStage:
    """One training run: the teacher, or (``StudentStage``) the distilled student."""

    model: str
    epochs: int
    kwargs: dict = field(default_factory=dict)  # extra constructor arguments (build_model), e.g. deconv_channels
    lr: float = 3e-3
    batch_size: int = 16
    warmup_iters: int = 100
    max_iters_per_epoch: int | None = None  # cap for smoke runs; None: the whole train split every epoch
    eval_every: int = 1  # validate every N epochs (and after the last)
    cpu_bf16: bool = False  # bfloat16 autocast where the CPU computes it natively (TrainConfig.cpu_bf16)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.eval_every < 1:
            raise ConfigError(f"epochs, batch_size and eval_every must be at least 1, got {self.epochs}, "
                              f"{self.batch_size} and {self.eval_every}")


@dataclass
class StudentStage(TrainStage):
    """The student, trained with Fast Pose Distillation from the teacher."""

    alpha: float = 0.5  # the teacher's share of the loss (the rest is the ground truth)
    # feature-level terms ({student: module, teacher: module, weight}), as distill.features of a training config
    features: list[dict] = field(default_factory=list)


@dataclass
class PruneStage:
    """Pruning the student to a FLOPs target, fine-tuned with the unpruned student as the teacher."""

    target_flops_ratio: float = 0.3  # Lite-HRNet-tiny can lose at most about 49% of its FLOPs
    importance: str = "l2"
    epochs: int = 2
    lr: float = 1e-3
    warmup_iters: int = 20
    max_iters_per_epoch: int | None = None
    distill_alpha: float = 0.5


@dataclass
class QuantizeStage:
    """INT8 post-training quantization (ONNX Runtime QDQ) and the FP16 copy of the pruned student."""

    calib_images: int = 64  # person crops of the train split
    method: str = "minmax"  # minmax | entropy | percentile


@dataclass
class BenchStage:
    """ONNX Runtime CPU latency: every variant timed in turn within each round; medians per person."""

    rounds: int = 30
    warmup: int = 3
    batches: list[int] = field(default_factory=lambda: [1, 8])
    # ONNX Runtime intra-op threads. 1 (the default) gives per-person numbers that other work on the machine
    # hardly moves; None: ONNX Runtime's default (one per core, spinning), fastest on an idle machine.
    threads: int | None = 1

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.warmup < 0 or not self.batches or min(self.batches) < 1:
            raise ConfigError(f"benchmark.rounds and batches must be positive, got {self.rounds}, {self.batches}")
        if 1 not in self.batches:
            raise ConfigError(f"benchmark.batches must include 1 (the report plots batch 1), got {self.batches}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"benchmark.threads must be at least 1 or null, got {self.threads}")


@dataclass
class QuickstartProfile:
    """Everything the quickstart runs; see the module docstring."""

    name: str
    data: DataStage = field(default_factory=DataStage)
    teacher: TrainStage = field(default_factory=lambda: TrainStage("simple_baseline_18", 8))
    student: StudentStage = field(default_factory=lambda: StudentStage("lite_hrnet_tiny", 10))
    prune: PruneStage = field(default_factory=PruneStage)
    quantize: QuantizeStage = field(default_factory=QuantizeStage)
    benchmark: BenchStage = field(default_factory=BenchStage)
    card: dict = field(default_factory=lambda: dict(CARD))
    augment: dict = field(default_factory=lambda: dict(AUGMENT))
    seed: int = 0
    loader_workers: int = 1  # data-loader processes of the training stages; not part of any stage key
    low_accuracy: bool = False  # a smoke-sized schedule: the report says its AP means nothing


# The fast profile's easier task: the "easy" synthetic level, a smaller crop with wider Gaussians, milder geometry.
FAST_CARD = {**CARD, "input_size": [64, 96], "heatmap_size": [16, 24], "sigma": 2.0, "blur_kernel_size": 5}
FAST_AUGMENT = {"scale_range": [0.85, 1.15], "rotation": 10.0, "rotate_prob": 0.3, "shift": 0.05, "half_body_prob": 0.0}

# A FitNets-style hint: the student's last features, through a 1x1 adapter, imitate the teacher's upsampled ones
# (same 16x24 grid as the heatmaps).
FAST_HINT = {"student": "backbone", "teacher": "keypoint_head.deconv_layers", "weight": 1e-3}

FAST = QuickstartProfile(
    name="fast",
    data=DataStage(train=400, val=200, level="easy"),
    teacher=TrainStage("simple_baseline_18", epochs=16, lr=5e-3, warmup_iters=20, eval_every=8, cpu_bf16=True),
    student=StudentStage("lite_hrnet_tiny", epochs=4, lr=5e-3, warmup_iters=20, eval_every=4,
                         features=[dict(FAST_HINT)]),
    prune=PruneStage(target_flops_ratio=0.3, epochs=1),
    quantize=QuantizeStage(calib_images=32),
    benchmark=BenchStage(rounds=20),
    card=dict(FAST_CARD),
    augment=dict(FAST_AUGMENT),
)

# The default profile: the fast profile's task and crop with 4x the images and longer schedules.
DEFAULT = QuickstartProfile(
    name="default",
    data=DataStage(train=1600, val=100, level="easy"),
    teacher=TrainStage("simple_baseline_18", epochs=20, lr=5e-3, warmup_iters=50, eval_every=4),
    student=StudentStage("lite_hrnet_tiny", epochs=8, lr=5e-3, warmup_iters=50),
    prune=PruneStage(target_flops_ratio=0.3, epochs=2),
    quantize=QuantizeStage(calib_images=64),
    benchmark=BenchStage(rounds=40),
    card=dict(FAST_CARD),
    augment=dict(FAST_AUGMENT),
)

PROFILES = {"fast": FAST, "default": DEFAULT}


def load_profile(path: str | os.PathLike) -> QuickstartProfile:
    """A profile from a YAML file (keys as the dataclasses; unknown keys refused by path)."""
    from compress.config import load_yaml

    return load_yaml(QuickstartProfile, path)
