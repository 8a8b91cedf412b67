"""``edgepose distill CONFIG.yaml``: train a student with Fast Pose Distillation (the config's ``distill`` section)."""

from __future__ import annotations

import argparse

from compress.train.loop import add_arguments as _train_arguments
from compress.train.loop import run as _train_run
from edgepose.errors import ConfigError

HELP = "train a student from a teacher checkpoint (Fast Pose Distillation)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Same arguments as ``edgepose train``."""
    _train_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Refuse a config without a ``distill`` section, then train."""
    from compress.config import load_yaml
    from compress.train.config import TrainConfig

    if load_yaml(TrainConfig, args.config).distill is None:
        raise ConfigError(f"{args.config} has no 'distill' section (distill: {{teacher: TEACHER.pth, alpha: 0.5}})")
    return _train_run(args)
