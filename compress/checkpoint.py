"""Checkpoints: written atomically, carrying the architecture and card so that they rebuild their own model."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from compress.torch_files import first_line, load_torch_file
from edgepose.card import ModelCard
from edgepose.errors import CardError, CheckpointError
from edgepose.io import atomic_path

FORMAT = "edgepose-checkpoint-1"
# Entries every checkpoint has, and the type each must be (a foreign or hand-made file is refused by name).
REQUIRED = {"arch": dict, "card": dict, "state_dict": dict}
TENSOR_TABLES = ("state_dict", "ema_state_dict")
# Checkpoints written before ``plain`` hold numpy's RNG state as an array: these globals rebuild a plain array (no
# other callable), under the names numpy 2 and numpy 1 pickle them with.
_reconstruct = np._core.multiarray._reconstruct if hasattr(np, "_core") else np.core.multiarray._reconstruct
NUMPY_ARRAYS = [np.ndarray, np.dtype, (_reconstruct, "numpy._core.multiarray._reconstruct"),
                (_reconstruct, "numpy.core.multiarray._reconstruct"),
                *(type(np.dtype(t)) for t in (np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32,
                                              np.int64, np.uint64, np.float16, np.float32, np.float64))]  # no objects


class ForeignCheckpointError(CheckpointError):
    """A readable torch file that is not an edgepose checkpoint (e.g. MMPose's)."""


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, card: ModelCard, **extra: Any) -> None:
    """Write ``{format, arch, card, state_dict, **extra}`` to ``path`` via a temp file and rename."""
    payload = {"format": FORMAT, "arch": dict(model.arch), "card": card.to_dict(),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **plain(extra)}
    if getattr(model, "pruned_channels", None):  # compress.prune.structured: the channel counts pruning changed
        payload["pruned_channels"] = dict(model.pruned_channels)
    if getattr(model, "qat", False):  # compress.qat: BNs folded, fake-quantized convolutions
        payload["qat"] = True
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(tmp)
        if unsafe:  # pragma: no cover - a caller passed an object that read_checkpoint would refuse
            raise CheckpointError(f"checkpoint {path} would hold Python objects that loading refuses ({unsafe}): "
                                  "pass tensors, numbers, strings, lists and dicts only")


def same_file(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Make ``dst`` hold ``src``'s bytes, atomically: a hard link where the file system allows, else a copy.
    ``src`` is later replaced by rename (``save_checkpoint``), never rewritten in place, so the link stays valid."""
    import shutil

    with atomic_path(dst) as tmp:
        os.remove(tmp)
        try:
            os.link(src, tmp)
        except OSError:  # no hard links here (some network and FAT file systems)
            shutil.copyfile(src, tmp)


def plain(value: Any) -> Any:
    """``value`` with numpy arrays as lists and numpy scalars as Python numbers, inside dicts, lists and tuples.

    A checkpoint then holds only what ``weights_only`` loading reads (e.g. ``np.random.get_state()``'s key array
    becomes a list, which ``np.random.set_state`` takes back).
    """
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint dict (CPU tensors); a missing, truncated or foreign file raises CheckpointError."""
    path = os.fspath(path)
    payload = load_torch_file(path, "checkpoint", allowed=NUMPY_ARRAYS)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ForeignCheckpointError(
            f"{path} is not an edgepose checkpoint (no '{FORMAT}' format tag); MMPose checkpoints load with "
            "model.init in the training config"
        )
    check_entries(payload, path)
    return payload


def check_entries(payload: dict, path: str) -> None:
    """The entries a checkpoint must have, with the right types; a damaged or hand-made one is refused by name."""
    for key, kind in REQUIRED.items():
        if key not in payload:
            raise CheckpointError(f"{path} is an edgepose checkpoint without its '{key}' entry (damaged or hand-made)")
        if not isinstance(payload[key], kind):
            raise CheckpointError(f"{path}: checkpoint entry '{key}' must be a {kind.__name__}, "
                                  f"got {type(payload[key]).__name__}")
    if not isinstance(payload["arch"].get("name"), str) or not all(isinstance(k, str) for k in payload["arch"]):
        raise CheckpointError(f"{path}: checkpoint entry 'arch' must name the model ('name': str) and its arguments")
    for key in TENSOR_TABLES:
        if key in payload:
            _check_tensor_table(payload[key], key, path)
    if payload.get("pruned_channels") is not None and not _is_channel_record(payload["pruned_channels"]):
        raise CheckpointError(f"{path}: checkpoint entry 'pruned_channels' must map layer names to "
                              "{attribute: positive int}")


def _check_tensor_table(table: Any, key: str, path: str) -> None:
    """A state dict: names -> tensors."""
    if not isinstance(table, dict):
        raise CheckpointError(f"{path}: checkpoint entry '{key}' must be a dict, got {type(table).__name__}")
    bad = next((k for k, v in table.items() if not isinstance(k, str) or not torch.is_tensor(v)), None)
    if bad is not None:
        raise CheckpointError(f"{path}: checkpoint entry '{key}' holds {bad!r}, which is not a named tensor")


def _is_channel_record(record: Any) -> bool:
    """``{layer: {attribute: positive int}}``, what ``compress.prune.pruned_shapes.channel_record`` writes."""
    def count(n: Any) -> bool:
        return isinstance(n, int) and not isinstance(n, bool) and n > 0

    return isinstance(record, dict) and all(
        isinstance(layer, str) and isinstance(sizes, dict) and all(isinstance(a, str) and count(n)
                                                                   for a, n in sizes.items())
        for layer, sizes in record.items())


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

    path = os.fspath(path)
    payload = read_checkpoint(path)
    try:
        card = ModelCard.from_dict(payload["card"])
    except CardError as exc:
        raise CheckpointError(f"{path}: the checkpoint's card is invalid: {exc}") from exc
    try:
        model = build_model(**payload["arch"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild the model its 'arch' entry describes: {exc}") from exc
    state = payload.get("ema_state_dict") or payload["state_dict"]
    restore_pruned(model, payload, state, path)
    load_state(model, state, path)
    return model.eval(), card, payload


def restore_pruned(model: torch.nn.Module, payload: dict, state_dict: dict, source: str = "the checkpoint") -> None:
    """Give a freshly built model the structure its checkpoint records: pruned channel counts, QAT wrappers.

    ``source`` (the checkpoint's path) names it in errors.
    """
    record = payload.get("pruned_channels")
    if record:
        from compress.prune.pruned_shapes import apply_channel_record

        modules = dict(model.named_modules())
        for layer, sizes in record.items():
            odd = [a for a in sizes if not isinstance(getattr(modules.get(layer), a, None), int)]
            if odd:
                raise CheckpointError(f"{source}: its pruned_channels name {layer}.{odd[0]}, which is not a "
                                      f"channel count of {type(model).__name__}")
        try:
            apply_channel_record(model, record, state_dict)
        except (KeyError, AttributeError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{source}: its pruned_channels do not fit {type(model).__name__}: "
                                  f"{first_line(exc)}") from exc
        model.pruned_channels = dict(record)
    if payload.get("qat"):
        from compress.qat import prepare_qat

        prepare_qat(model, check=False)
