"""``edgepose prune CONFIG.yaml``: prune a trained checkpoint to a FLOPs target, fine-tuning after every step with
the unpruned model as the distillation teacher (the default), and report what it cost and saved.

    checkpoint: runs/synthetic_teacher_simple_baseline_18/last.pth
    out_dir: runs/sb18_pruned30
    prune: {target_flops_ratio: 0.3, importance: l2, global_pruning: false, steps: 1}
    finetune: {epochs: 2, lr: 0.001, distill_alpha: 0.5}

Fine-tuning reuses the training config recorded in the checkpoint (data, crop, augmentation, seed) with the
epochs / learning rate / output folder above. ``OUT_DIR/pruned.pth`` is an ordinary checkpoint (it records the
pruned channel counts), ``OUT_DIR/report.json`` holds FLOPs, params and AP before and after.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
from dataclasses import dataclass, field

from compress.prune.structured import PruneSettings
from edgepose.errors import ConfigError

HELP = "prune a checkpoint to a FLOPs target (Torch-Pruning), fine-tuning with distillation from the original"


@dataclass
class FinetuneSettings:
    """Fine-tuning after each pruning step."""

    epochs: int = 2
    lr: float = 1e-3
    warmup_iters: int = 20
    distill_alpha: float | None = 0.5  # None: plain fine-tuning on the ground truth
    max_iters_per_epoch: int | None = None

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ConfigError(f"finetune.epochs must be >= 0, got {self.epochs}")


@dataclass
class PruneJob:
    """The prune config file."""

    checkpoint: str
    out_dir: str
    prune: PruneSettings = field(default_factory=PruneSettings)
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)


def _taylor_batches(config, card, count: int = 2) -> list[dict]:
    from compress.train import distributed
    from compress.train.loop import build_loaders

    loader, _ = build_loaders(config, card, distributed.Context())
    batches = []
    for batch in loader:
        batches.append(batch)
        if len(batches) == count:
            break
    return batches


def run_job(job: PruneJob, progress: bool = True) -> dict:
    """Prune (and fine-tune) as ``job`` says; returns the report written to ``OUT_DIR/report.json``."""
    from compress.checkpoint import load_model, save_checkpoint
    from compress.config import from_dict, to_dict
    from compress.prune.structured import prune_model
    from compress.train.config import TrainConfig
    from compress.train.loop import train
    from compress.train.losses import pose_loss
    from edgepose.io import atomic_write_text

    model, card, payload = load_model(job.checkpoint)
    if "config" not in payload:
        raise ConfigError(f"{job.checkpoint} records no training config: fine-tuning needs its data settings")
    base_config = from_dict(TrainConfig, payload["config"], "checkpoint config")
    base_config.distill = None
    base_flops = None
    steps = []
    current = job.checkpoint
    batches = _taylor_batches(base_config, card) if job.prune.importance == "taylor" else None
    for step in range(job.prune.steps):
        from compress.models.complexity import count_flops

        if base_flops is None:
            base_flops = count_flops(model, card.input_size)
        target = None if job.prune.target_flops_ratio is None else (
            base_flops * (1 - job.prune.target_flops_ratio * (step + 1) / job.prune.steps))
        report = prune_model(model, job.prune, target_flops=target, batches=batches, loss_fn=pose_loss)
        step_dir = os.path.join(job.out_dir, f"step{step + 1}")
        pruned_path = os.path.join(step_dir, "pruned_before_finetune.pth")
        save_checkpoint(pruned_path, model, card, config=payload["config"])
        entry = {"step": step + 1, **report.to_dict(), "checkpoint": pruned_path}
        if job.finetune.epochs > 0:
            config = copy.deepcopy(base_config)
            config.model.init = pruned_path
            config.epochs = job.finetune.epochs
            config.optim.lr = job.finetune.lr
            config.optim.warmup_iters = job.finetune.warmup_iters
            config.max_iters_per_epoch = job.finetune.max_iters_per_epoch
            config.out_dir = step_dir
            if job.finetune.distill_alpha is not None:
                from compress.train.distill import DistillConfig

                config.distill = DistillConfig(teacher=job.checkpoint, alpha=job.finetune.distill_alpha)
            result = train(config, progress=progress, overwrite=True)  # the job owns its step folders
            current = result["last"]
            model, card, _ = load_model(current)
            entry.update({"finetuned": current, "ap": result.get("AP"), "config": to_dict(config)})
        else:
            current = pruned_path
        steps.append(entry)
    final = os.path.join(job.out_dir, "pruned.pth")
    save_checkpoint(final, model, card, config=payload["config"], prune_steps=steps)
    from compress.models.complexity import count_flops, count_params

    record = {"source": job.checkpoint, "pruned": final, "engine": steps[-1]["engine"],
              "ap_before": (payload.get("metrics") or {}).get("AP"), "ap_after": steps[-1].get("ap"),
              "flops_before": base_flops, "flops_after": count_flops(model, card.input_size),
              "left_unpruned": steps[-1]["left_unpruned"],
              "params_before": steps[0]["params_before"], "params_after": count_params(model),
              "settings": to_dict(job.prune), "finetune": to_dict(job.finetune), "steps": steps}
    atomic_write_text(os.path.join(job.out_dir, "report.json"), json.dumps(record, indent=2, default=str) + "\n")
    return record


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``edgepose prune``."""
    parser.add_argument("config", help="prune config (YAML): checkpoint, out_dir, prune, finetune")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Load the job and run it."""
    from compress.config import load_yaml

    record = run_job(load_yaml(PruneJob, args.config), progress=not args.no_progress)
    for layer, reason in record["left_unpruned"].items():
        print(f"left unpruned: {layer}: {reason}")
    print(f"pruned {record['source']} -> {record['pruned']}: GFLOPs {record['flops_before']:.4f} -> "
          f"{record['flops_after']:.4f} ({1 - record['flops_after'] / record['flops_before']:.1%} less), params "
          f"{record['params_before']} -> {record['params_after']}, AP {record['ap_before']} -> {record['ap_after']}")
    return 0
