"""Load MMPose checkpoints (1.x and 0.x key layouts) of Lite-HRNet and SimpleBaseline into our models.

Our modules carry MMPose's names (``backbone.stem.conv1.conv.weight``, ``backbone.stage0.0.layers.0...``,
``backbone.layer1.0.conv1.weight``, ``...final_layer.weight``), so the mapping is prefix handling only:

- MMPose 1.x (``TopdownPoseEstimator``): ``backbone.*`` -> ``backbone.*``, ``head.*`` -> ``keypoint_head.*``
  (``HeatmapHead``: ``deconv_layers``, ``final_layer``);
- MMPose 0.x (``TopDown``): ``backbone.*`` and ``keypoint_head.*`` unchanged (``TopdownHeatmapSimpleHead``);
- a leading ``module.`` (DistributedDataParallel) is dropped; ``data_preprocessor.*`` buffers are ignored.

Our own ``keypoint_head`` is named so because ``PoseModel.head`` is the head's kind ("heatmap" | "simcc").
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from edgepose.errors import CheckpointError

_SHOW = 8  # how many keys an error message names


@dataclass
class LoadReport:
    """What ``load_mmpose_checkpoint`` did not load (empty lists after a strict load)."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)  # "key: checkpoint shape vs model shape"


def from_mmpose_key(key: str) -> str | None:
    """Our name for an MMPose state-dict key (1.x or 0.x), or None for keys that carry no weights of ours."""
    if key.startswith("module."):
        key = key[len("module."):]
    if key.startswith("data_preprocessor."):
        return None
    if key.startswith("head."):
        return "keypoint_head." + key[len("head."):]
    return key


def to_mmpose_state_dict(model: nn.Module, version: int = 1) -> dict[str, torch.Tensor]:
    """Our state dict in MMPose's key layout (``version`` 1: ``head.*``; 0: ``keypoint_head.*``)."""
    if version not in (0, 1):
        raise ValueError(f"MMPose layout version must be 0 or 1, got {version}")
    out = {}
    for key, value in model.state_dict().items():
        if version == 1 and key.startswith("keypoint_head."):
            key = "head." + key[len("keypoint_head."):]
        out[key] = value
    return out


def read_state_dict(path_or_state_dict, trusted: bool = False) -> dict[str, torch.Tensor]:
    """The tensors of an MMPose checkpoint: a path, a ``{"state_dict": ..., "meta": ...}`` dict or a state dict."""
    source = path_or_state_dict
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise CheckpointError(f"MMPose checkpoint not found: {path}")
        try:
            source = torch.load(path, map_location="cpu", weights_only=not trusted)
        except pickle.UnpicklingError as exc:
            raise CheckpointError(
                f"{path} holds Python objects besides tensors (MMPose metadata); if you trust this file, load it "
                f"with trusted=True (full unpickling), or re-save only its 'state_dict'") from exc
        except Exception as exc:  # torch raises several types for truncated or non-checkpoint files
            raise CheckpointError(f"{path} is not a readable torch checkpoint: {exc}") from exc
    if not isinstance(source, Mapping):
        raise CheckpointError(f"expected a checkpoint dict or a path, got {type(source).__name__}")
    for wrapper in ("state_dict", "model"):
        if wrapper in source and isinstance(source[wrapper], Mapping):
            source = source[wrapper]
            break
    tensors = {k: v for k, v in source.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError("the checkpoint holds no tensors (expected an MMPose 'state_dict')")
    return tensors


def load_mmpose_checkpoint(model: nn.Module, path_or_state_dict, strict: bool = True,
                           trusted: bool = False) -> LoadReport:
    """Load an MMPose checkpoint (path, checkpoint dict or state dict) into ``model``; returns a ``LoadReport``.

    ``strict=True``: every key of the model must be filled with a tensor of the same shape and the checkpoint must
    have no other weights, else ``CheckpointError`` names the missing, unexpected and mismatched keys (a checkpoint
    of another architecture fails here). ``strict=False``: loads the keys that match in name and shape (e.g. a
    backbone under a head with another number of keypoints) and reports the rest; it still fails when no backbone
    weight matches. ``trusted=True`` allows full unpickling of files whose metadata is not plain tensors.
    """
    ours = model.state_dict()
    theirs: dict[str, torch.Tensor] = {}
    for key, value in read_state_dict(path_or_state_dict, trusted).items():
        mapped = from_mmpose_key(key)
        if mapped is not None:
            theirs[mapped] = value
    report = LoadReport(
        missing=sorted(set(ours) - set(theirs)),
        unexpected=sorted(set(theirs) - set(ours)),
        mismatched=[f"{k}: {tuple(theirs[k].shape)} vs {tuple(ours[k].shape)}"
                    for k in ours if k in theirs and theirs[k].shape != ours[k].shape],
    )
    loadable = {k: v for k, v in theirs.items() if k in ours and v.shape == ours[k].shape}
    what = f"{type(model).__name__} {getattr(model, 'arch', {}).get('name', '')}".strip()
    backbone_matches = any(k.startswith("backbone.") for k in loadable)
    if (strict and (report.missing or report.unexpected or report.mismatched)) or not backbone_matches:
        raise CheckpointError(
            f"MMPose checkpoint does not match {what}" + ("" if backbone_matches else " (no backbone key matches)")
            + ": "
            + _describe(report) + ". Is it a checkpoint of this architecture (e.g. Lite-HRNet-18 vs -30, the same "
            "number of keypoints)? strict=False loads the matching part.")
    model.load_state_dict(loadable, strict=False)
    return report


def _describe(report: LoadReport) -> str:
    parts = []
    for label, keys in (("missing", report.missing), ("unexpected", report.unexpected),
                        ("with another shape (checkpoint vs model)", report.mismatched)):
        if keys:
            more = f" (+{len(keys) - _SHOW} more)" if len(keys) > _SHOW else ""
            parts.append(f"{len(keys)} {label}: {', '.join(keys[:_SHOW])}{more}")
    return "; ".join(parts) or "no differences"
