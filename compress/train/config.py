"""The training config: one YAML file, dataclasses all the way down (see compress/configs/ for examples)."""

from __future__ import annotations

from dataclasses import dataclass, field

from compress.train.distill import DistillConfig
from edgepose.card import ModelCard
from edgepose.errors import ConfigError


@dataclass
class ModelConfig:
    """Which network: a name of ``compress.models.MODELS``, its head and extra constructor arguments."""

    name: str = "lite_hrnet_18"
    head: str | None = None  # "heatmap" | "simcc"; None: the model's own (SimCC for RTMPose, heatmaps for the others)
    kwargs: dict = field(default_factory=dict)
    init: str | None = None  # a checkpoint (ours or MMPose's) to start from


@dataclass
class DataConfig:
    """COCO-layout annotation files and image folders; ``val_boxes`` is a COCO detection results json."""

    train_ann: str = ""
    train_images: str = ""
    val_ann: str = ""
    val_images: str = ""
    val_boxes: str | None = None
    box_threshold: float = 0.0
    batch_size: int = 32
    val_batch_size: int = 64
    workers: int = 2


@dataclass
class OptimConfig:
    """Optimiser and schedule: linear warm-up, then cosine decay to ``min_lr_ratio`` or steps at milestones."""

    name: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_iters: int = 500
    warmup_ratio: float = 0.001
    schedule: str = "cosine"
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    min_lr_ratio: float = 0.01

    def __post_init__(self) -> None:
        if self.name not in ("adam", "adamw"):
            raise ConfigError(f"optim.name must be 'adam' or 'adamw', got {self.name!r}")
        if self.schedule not in ("cosine", "step"):
            raise ConfigError(f"optim.schedule must be 'cosine' or 'step', got {self.schedule!r}")
        if self.lr <= 0:
            raise ConfigError(f"optim.lr must be positive, got {self.lr}")


@dataclass
class TrainConfig:
    """Everything a training run needs; ``card`` holds the ModelCard fields (preprocessing and codec)."""

    card: dict
    data: DataConfig
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: dict = field(default_factory=dict)
    optim: OptimConfig = field(default_factory=OptimConfig)
    epochs: int = 210
    out_dir: str = "runs/train"
    seed: int = 0
    amp: bool = True  # float16 autocast; used only on a GPU
    cpu_bf16: bool = False  # bfloat16 autocast when training on a CPU with native bf16 (AVX512-BF16 or AMX)
    grad_clip: float | None = None
    ema_decay: float | None = None
    eval_every: int = 1
    save_every: int = 1  # write last.pth every N epochs (and whenever validating, and after the last epoch)
    flip_test: bool = False
    max_iters_per_epoch: int | None = None  # cap for smoke runs and tests
    distill: DistillConfig | None = None  # Fast Pose Distillation from a teacher checkpoint (compress/train/distill.py)
    qat: bool = False  # quantization-aware training (compress/qat.py): fold BNs, fake INT8 on conv inputs/weights

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ConfigError(f"ema_decay must be in (0, 1), got {self.ema_decay}")
        if self.eval_every < 1 or self.save_every < 1:
            raise ConfigError(f"eval_every and save_every must be at least 1, got {self.eval_every} and "
                              f"{self.save_every}")

    def model_card(self) -> ModelCard:
        """The card the model is trained for (and that export will embed)."""
        return ModelCard.from_dict(dict(self.card))
