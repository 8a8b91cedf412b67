"""Checkpoints: written atomically, carrying the architecture and card so that they rebuild their own model."""

from __future__ import annotations

import os
from typing import Any

import torch

from edgepose.card import ModelCard
from edgepose.errors import CheckpointError
from edgepose.io import atomic_path

FORMAT = "edgepose-checkpoint-1"


class ForeignCheckpointError(CheckpointError):
    """A readable torch file that is not an edgepose checkpoint (e.g. MMPose's)."""


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, card: ModelCard, **extra: Any) -> None:
    """Write ``{format, arch, card, state_dict, **extra}`` to ``path`` via a temp file and rename."""
    payload = {"format": FORMAT, "arch": dict(model.arch), "card": card.to_dict(),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **extra}
    if getattr(model, "pruned_channels", None):  # compress.prune.structured: the channel counts pruning changed
        payload["pruned_channels"] = dict(model.pruned_channels)
    if getattr(model, "qat", False):  # compress.qat: BNs folded, fake-quantized convolutions
        payload["qat"] = True
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint dict (CPU tensors); a missing, truncated or foreign file raises CheckpointError."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises several types for truncated/corrupt zip archives
        raise CheckpointError(f"cannot read checkpoint {path} (truncated or not a torch file): {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ForeignCheckpointError(
            f"{path} is not an edgepose checkpoint (no '{FORMAT}' format tag); MMPose checkpoints load with "
            "model.init in the training config"
        )
    return payload


def load_state(model: torch.nn.Module, state_dict: dict, source: str) -> None:
    """Load weights strictly; a checkpoint of another architecture fails naming the first mismatching keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [k for k in own if k in state_dict and own[k].shape != state_dict[k].shape]
    if missing or unexpected or shapes:
        detail = "; ".join(
            f"{what}: {keys[:3]}{' ...' if len(keys) > 3 else ''}"
            for what, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)) if keys
        )
        raise CheckpointError(f"{source} does not match {type(model).__name__} {getattr(model, 'arch', '')}: {detail}")
    model.load_state_dict(state_dict)


def load_model(path: str | os.PathLike) -> tuple[torch.nn.Module, ModelCard, dict]:
    """Rebuild the model recorded in a checkpoint (EMA weights when present) with its card; eval mode."""
    from compress.models import build_model

    payload = read_checkpoint(path)
    model = build_model(**payload["arch"])
    state = payload.get("ema_state_dict") or payload["state_dict"]
    restore_pruned(model, payload, state)
    load_state(model, state, os.fspath(path))
    return model.eval(), ModelCard.from_dict(payload["card"]), payload


def restore_pruned(model: torch.nn.Module, payload: dict, state_dict: dict) -> None:
    """Give a freshly built model the structure its checkpoint records: pruned channel counts, QAT wrappers."""
    record = payload.get("pruned_channels")
    if record:
        from compress.prune.pruned_shapes import apply_channel_record

        apply_channel_record(model, record, state_dict)
        model.pruned_channels = dict(record)
    if payload.get("qat"):
        from compress.qat import prepare_qat

        prepare_qat(model, check=False)
