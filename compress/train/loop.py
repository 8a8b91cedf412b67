"""Train a pose model from a TrainConfig: single process, or DDP under ``torchrun --nproc_per_node N``.

    edgepose train CONFIG.yaml [--resume]
    torchrun --nproc_per_node 2 -m compress.train.loop CONFIG.yaml

Every epoch ends with an atomic ``last.pth`` (model, optimiser, scaler, EMA, RNG, counters) and, when validation
AP improves, ``best.pth``. ``--resume`` restarts the interrupted epoch from ``last.pth``: the learning rate is a pure
function of the iteration, augmentation a pure function of (seed, epoch, index) and the shuffle order of
(seed, epoch), so a resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from compress.checkpoint import (
    ForeignCheckpointError,
    load_state,
    read_checkpoint,
    restore_pruned,
    same_file,
    save_checkpoint,
)
from compress.config import from_dict, load_yaml, to_dict
from compress.progress import bar, line
from compress.train import distributed
from compress.train.config import TrainConfig
from compress.train.losses import pose_loss
from edgepose.card import ModelCard
from edgepose.errors import CheckpointError, ConfigError


def lr_at(config: TrainConfig, iteration: int, total: int) -> float:
    """Learning rate after ``iteration`` steps of ``total``: linear warm-up, then cosine or step decay."""
    opt = config.optim
    if iteration < opt.warmup_iters:
        alpha = iteration / max(1, opt.warmup_iters)
        return opt.lr * (opt.warmup_ratio + (1 - opt.warmup_ratio) * alpha)
    if opt.schedule == "step":
        epoch = iteration * config.epochs // max(1, total)
        return opt.lr * opt.gamma ** sum(epoch >= m for m in opt.milestones)
    progress = (iteration - opt.warmup_iters) / max(1, total - opt.warmup_iters)
    floor = opt.lr * opt.min_lr_ratio
    return floor + 0.5 * (opt.lr - floor) * (1 + math.cos(math.pi * min(1.0, progress)))


def native_bf16() -> bool:
    """Whether oneDNN computes bfloat16 natively on this CPU (else autocast would emulate it, slower than float32)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def cpu_autocast_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """bfloat16 where ``cpu_bf16`` asks for it on a CPU that computes it natively; None (float32) otherwise."""
    if not config.cpu_bf16 or device.type != "cpu":
        return None
    if not native_bf16():
        warnings.warn("cpu_bf16: this CPU has no native bfloat16 (AVX512-BF16 or AMX); training in float32",
                      stacklevel=2)
        return None
    return torch.bfloat16


def build_for(config: TrainConfig, card: ModelCard) -> torch.nn.Module:
    """The configured model, checked against the card (keypoints, input size, codec/head, output size)."""
    from compress.models import build_model

    model = build_model(config.model.name, num_keypoints=card.num_keypoints, input_size=card.input_size,
                        head=config.model.head, **config.model.kwargs)
    wants_simcc = card.codec == "simcc"
    if wants_simcc != (model.head == "simcc"):
        raise ConfigError(f"card codec '{card.codec}' needs a {'simcc' if wants_simcc else 'heatmap'} head, "
                          f"model.head is '{model.head}'")
    if not wants_simcc and tuple(model.heatmap_size) != tuple(card.heatmap_size):
        raise ConfigError(f"model {config.model.name} outputs heatmaps of {list(model.heatmap_size)}, the card "
                          f"says heatmap_size {list(card.heatmap_size)}")
    if wants_simcc and model.simcc_split_ratio != card.simcc_split_ratio:
        raise ConfigError(f"model simcc_split_ratio {model.simcc_split_ratio} != card {card.simcc_split_ratio}")
    if config.model.init:
        from compress.models.mmpose_weights import load_mmpose_checkpoint

        try:
            payload = read_checkpoint(config.model.init)
        except ForeignCheckpointError:  # not ours: MMPose's key layout, which raises its own clear error
            load_mmpose_checkpoint(model, config.model.init)
        else:
            state = payload.get("ema_state_dict") or payload["state_dict"]
            restore_pruned(model, payload, state)
            load_state(model, state, config.model.init)
    if config.qat and not getattr(model, "qat", False):
        from compress.qat import prepare_qat

        prepare_qat(model)
    return model


def build_loaders(config: TrainConfig, card: ModelCard, ctx: distributed.Context):
    """Train and val loaders over the COCO-layout files of ``config.data``."""
    from compress.data.coco import CocoPoseDataset
    from compress.data.loader import make_loader
    from compress.data.transforms import AugmentConfig

    data = config.data
    augment = from_dict(AugmentConfig, config.augment, "config.augment")
    train_set = CocoPoseDataset(data.train_ann, data.train_images, card, "train", augment=augment, seed=config.seed)
    val_set = CocoPoseDataset(data.val_ann, data.val_images, card, "val", boxes=data.val_boxes,
                              box_threshold=data.box_threshold)
    train = make_loader(train_set, data.batch_size, shuffle=True, workers=data.workers,
                        distributed=ctx.distributed, seed=config.seed, drop_last=True)
    val = make_loader(val_set, data.val_batch_size, shuffle=False, workers=data.workers)
    return train, val


def rng_state() -> dict:
    """Python, numpy and torch generator states."""
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict) -> None:
    """Restore what ``rng_state`` saved."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def seed_all(seed: int) -> None:
    """Seed Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class State:
    """Counters that a checkpoint carries."""

    epoch: int = 0
    iteration: int = 0
    best_ap: float = -1.0


RUN_FILES = ("last.pth", "best.pth", "log.csv", "notes.txt")


def epoch_line(metrics: dict, epochs: int) -> str:
    """The one log line of an epoch: loss, learning rate, AP when evaluated, seconds."""
    text = (f"epoch {metrics['epoch']}/{epochs}: loss {metrics['train_loss']:.5f}, lr {metrics['lr']:.2e}, "
            f"{metrics['epoch_seconds']:.1f} s")
    if "AP" in metrics:
        text += f", val AP {metrics['AP']:.3f}"
    return text


def check_out_dir(out_dir: str, resume: bool | str, overwrite: bool) -> bool:
    """Hold the run-folder contract; returns whether to resume.

    ``resume`` True: continue ``OUT/last.pth`` (refused when there is none); "auto": continue it when it exists,
    else start; False: start a new run, refused when ``out_dir`` already holds one (its log and checkpoints would
    be lost) unless ``overwrite``, which removes them first.
    """
    last = os.path.join(out_dir, "last.pth")
    if resume is True and not os.path.isfile(last):
        raise ConfigError(f"nothing to resume: {last} does not exist (run without --resume to start a new run)")
    if resume not in (True, False, "auto"):
        raise ConfigError(f"resume must be True, False or 'auto', got {resume!r}")
    if resume == "auto":
        resume = os.path.isfile(last)
    existing = [name for name in RUN_FILES if os.path.exists(os.path.join(out_dir, name))]
    if not resume and existing and not overwrite:
        raise ConfigError(f"{out_dir} already holds a run ({', '.join(existing)}): continue it with --resume, start "
                          "over with --overwrite, or choose another --out-dir")
    return bool(resume)


def _clear_run(out_dir: str) -> None:
    for name in RUN_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(out_dir, name))


def train(config: TrainConfig, resume: bool | str = False, progress: bool = True, overwrite: bool = False) -> dict:
    """Run the training described by ``config``; returns the last validation metrics and paths.

    ``resume`` and ``overwrite``: see ``check_out_dir`` (a new run never silently replaces an old one).
    """
    from compress.data.loader import set_epoch
    from compress.train.evaluate import evaluate
    from compress.train.logs import RunLog

    resume = check_out_dir(config.out_dir, resume, overwrite)
    ctx = distributed.init()
    if not resume and ctx.is_main:
        _clear_run(config.out_dir)  # only reached with overwrite=True or nothing to clear
    distributed.barrier(ctx)
    seed_all(config.seed)
    card = config.model_card()
    model = build_for(config, card).to(ctx.device)
    train_loader, val_loader = build_loaders(config, card, ctx)
    params = [p for p in model.parameters() if p.requires_grad]
    optim_cls = torch.optim.AdamW if config.optim.name == "adamw" else torch.optim.Adam
    optimizer = optim_cls(params, lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    use_amp = config.amp and ctx.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    autocast_dtype = torch.float16 if use_amp else cpu_autocast_dtype(config, ctx.device)
    ema = None
    if config.ema_decay:
        ema = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(config.ema_decay))
    teacher = adapters = None
    if config.distill is not None:
        from compress.train.teacher_source import TeacherSource

        teacher = TeacherSource(config.distill, model, card, train_loader.dataset, config.seed, ctx.device)
        if teacher.adapters is not None:  # feature adapters train with the student, outside the exported model
            optimizer.add_param_group({"params": list(teacher.adapters.parameters())})
            adapters = (torch.nn.parallel.DistributedDataParallel(teacher.adapters) if ctx.distributed
                        else teacher.adapters)
    net = torch.nn.parallel.DistributedDataParallel(model) if ctx.distributed else model
    per_epoch = len(train_loader) if config.max_iters_per_epoch is None else min(len(train_loader),
                                                                                 config.max_iters_per_epoch)
    total = per_epoch * config.epochs
    state = State()
    last = os.path.join(config.out_dir, "last.pth")
    if resume:
        payload = read_checkpoint(last)
        needed = ["optimizer", "scaler", "state", "rng"] + (["adapters"] if teacher and teacher.adapters else [])
        missing = [k for k in needed if k not in payload]
        if missing:
            raise CheckpointError(f"{last} cannot resume a run: it has no {', '.join(missing)} (a checkpoint saved by "
                                  "edgepose train holds them; start a new run with --overwrite, or use it as "
                                  "model.init)")
        load_state(model, payload["state_dict"], last)
        optimizer.load_state_dict(payload["optimizer"])
        scaler.load_state_dict(payload["scaler"])
        if ema is not None and payload.get("ema_full"):
            ema.load_state_dict(payload["ema_full"])
        if teacher is not None and teacher.adapters is not None:
            teacher.adapters.load_state_dict(payload["adapters"])
        state = State(**payload["state"])
        set_rng_state(payload["rng"])
    log = RunLog(config.out_dir, enabled=ctx.is_main)
    if resume:  # epochs logged after the last checkpoint (save_every > 1) are trained again: drop their rows
        log.drop_after(state.epoch)
    metrics: dict = {}
    for epoch in range(state.epoch, config.epochs):
        set_epoch(train_loader, epoch)
        if teacher is not None:
            teacher.begin_epoch(epoch, ctx.is_main, lambda: distributed.barrier(ctx))
        net.train()
        batches = bar(train_loader, total=per_epoch, desc=f"epoch {epoch + 1}/{config.epochs}",
                      enabled=progress and ctx.is_main)
        running, seen, started = 0.0, 0, time.time()
        for step, batch in enumerate(batches):
            if step >= per_epoch:
                break
            lr = lr_at(config, state.iteration, total)
            for group in optimizer.param_groups:
                group["lr"] = lr
            images = batch["image"].to(ctx.device, non_blocking=True)
            targets = {k: v.to(ctx.device, non_blocking=True) for k, v in batch["targets"].items()}
            weights = batch["weights"].to(ctx.device, non_blocking=True)
            with torch.autocast(ctx.device.type, dtype=autocast_dtype or torch.float16,
                                enabled=autocast_dtype is not None):
                outputs = net(images)
                if teacher is None:
                    loss = pose_loss(outputs, targets, weights)
                else:
                    loss = teacher.loss(outputs, images, batch["meta"], targets, weights, adapters)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at iteration {state.iteration}: lower optim.lr")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            if ema is not None:
                ema.update_parameters(model)
            state.iteration += 1
            running += loss.item()
            seen += 1
            if not batches.disable:
                batches.set_postfix(loss=f"{running / seen:.5f}", lr=f"{lr:.2e}")
        train_loss = distributed.mean(ctx, running / max(1, seen))
        state.epoch = epoch + 1
        metrics = {"epoch": state.epoch, "iteration": state.iteration, "lr": lr, "train_loss": train_loss,
                   "epoch_seconds": time.time() - started}
        validate = state.epoch % config.eval_every == 0 or state.epoch == config.epochs
        if ctx.is_main and validate:
            scored = ema.module if ema is not None else model
            metrics.update(evaluate(scored, val_loader, card, out_dir=os.path.join(config.out_dir, "eval"),
                                    flip=config.flip_test, device=ctx.device, progress=progress))
        if ctx.is_main and (validate or state.epoch % config.save_every == 0):
            ap = metrics.get("AP", -1.0)
            improved = ap > state.best_ap
            state.best_ap = max(state.best_ap, ap)
            extra = {"optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(), "rng": rng_state(),
                     "state": vars(state).copy(), "config": to_dict(config), "metrics": metrics}
            if teacher is not None and teacher.adapters is not None:
                extra["adapters"] = teacher.adapters.state_dict()
            if ema is not None:
                extra["ema_state_dict"] = {k: v.detach().cpu() for k, v in ema.module.state_dict().items()}
                extra["ema_full"] = ema.state_dict()
            save_checkpoint(last, model, card, **extra)
            if improved and "AP" in metrics:  # the same bytes: a hard link (a copy where links fail), no 2nd save
                same_file(last, os.path.join(config.out_dir, "best.pth"))
        if ctx.is_main:
            log.write(metrics)
            line(epoch_line(metrics, config.epochs), enabled=progress)
        state.best_ap = distributed.broadcast(ctx, state.best_ap)
        distributed.barrier(ctx)
    if teacher is not None:
        if teacher.cache is not None and ctx.is_main:
            log.note(f"teacher cache {teacher.cache.dir}: {teacher.cache.hits} batches read, "
                     f"{teacher.cache.misses} computed")
        teacher.close()
    checksum = float(sum(p.detach().double().sum().item() for p in model.parameters()))
    agree = distributed.same_on_all_ranks(ctx, checksum)
    if ctx.distributed and ctx.is_main:
        log.note(f"world_size {ctx.world_size}: parameter checksum {checksum!r} on every rank: {agree}")
    log.close()
    distributed.cleanup(ctx)
    if not agree:
        raise RuntimeError("DDP replicas diverged: parameter checksums differ between ranks")
    return {**metrics, "best_ap": state.best_ap, "last": last, "out_dir": config.out_dir, "checksum": checksum,
            "world_size": ctx.world_size}


HELP = "train a pose model from a YAML config (DDP under torchrun)"


def main(argv: list[str] | None = None) -> int:
    """``python -m compress.train.loop CONFIG.yaml [--resume]`` (what torchrun launches)."""
    parser = argparse.ArgumentParser(description="train a pose model from a YAML config")
    add_arguments(parser)
    return run(parser.parse_args(argv))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``edgepose train``."""
    parser.add_argument("config", help="training config (YAML)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT_DIR/last.pth (which must exist)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start over in an OUT_DIR that holds a run (its log.csv and checkpoints are removed)")
    parser.add_argument("--out-dir", help="override the config's out_dir")
    parser.add_argument("--epochs", type=int, help="override the config's epochs")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Load the config, apply overrides and train."""
    config = load_yaml(TrainConfig, args.config)
    if args.out_dir:
        config.out_dir = args.out_dir
    if args.epochs:
        config.epochs = args.epochs
    if args.resume and args.overwrite:
        raise ConfigError("--resume continues the run in OUT_DIR and --overwrite removes it: give one of them")
    try:
        result = train(config, resume=args.resume, progress=not args.no_progress, overwrite=args.overwrite)
    except KeyboardInterrupt:
        last = os.path.join(config.out_dir, "last.pth")
        if os.path.isfile(last):
            print(f"interrupted: {last} holds the last finished epoch; continue with --resume", file=sys.stderr)
        else:
            print("interrupted before the first epoch finished: nothing saved", file=sys.stderr)
        raise
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"done: epoch {result.get('epoch')} AP {result.get('AP', float('nan')):.4f} "
              f"best {result['best_ap']:.4f} -> {result['last']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
