"""Load MMPose checkpoints (1.x and 0.x key layouts) of Lite-HRNet, SimpleBaseline, RTMPose and HRNet into our models.

Our modules carry MMPose's names (``backbone.stem.conv1.conv.weight``, ``backbone.stage0.0.layers.0...``,
``backbone.layer1.0.conv1.weight``, ``backbone.stage2.0.branches.0.0.conv1.weight``,
``backbone.stage1.1.blocks.0.conv2.depthwise_conv.conv.weight``, ``...final_layer.weight``, ``...gau.uv.weight``), so
the mapping is prefix handling only:

- MMPose 1.x (``TopdownPoseEstimator``): ``backbone.*`` -> ``backbone.*``, ``head.*`` -> ``keypoint_head.*``
  (``HeatmapHead``: ``deconv_layers``, ``final_layer``; ``RTMCCHead``: ``final_layer``, ``mlp``, ``gau``,
  ``cls_x``, ``cls_y``);
- MMPose 0.x (``TopDown``): ``backbone.*`` and ``keypoint_head.*`` unchanged (``TopdownHeatmapSimpleHead``);
- a leading ``module.`` (DistributedDataParallel) is dropped; ``data_preprocessor.*`` buffers are ignored.

RTMPose's CSPNeXt is loaded as MMPose's (and mmdet's) ``CSPNeXt`` names it; MMPose's RTMPose checkpoints are 1.x.
tests/compress/test_mmpose_architectures.py checks RTMPose-t/s/m and HRNet-W32/W48 against MMPose's own outputs.
Our own ``keypoint_head`` is named so because ``PoseModel.head`` is the head's kind ("heatmap" | "simcc").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from compress.torch_files import load_torch_file
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


def read_state_dict(path_or_state_dict) -> dict[str, torch.Tensor]:
    """The tensors of an MMPose checkpoint: a path, a ``{"state_dict": ..., "meta": ...}`` dict or a state dict.

    A path is loaded with ``weights_only=True`` (``compress.torch_files.load_torch_file``): a file whose metadata
    holds Python objects besides tensors is refused, never unpickled.
    """
    source = path_or_state_dict
    if isinstance(source, (str, Path)):
        source = load_torch_file(source, "MMPose checkpoint", hint=(
            "; if you trust it, keep only its weights: torch.save(torch.load(PATH, weights_only=False)"
            "['state_dict'], 'weights.pth')"))
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


def load_mmpose_checkpoint(model: nn.Module, path_or_state_dict, strict: bool = True) -> LoadReport:
    """Load an MMPose checkpoint (path, checkpoint dict or state dict) into ``model``; returns a ``LoadReport``.

    ``strict=True``: every key of the model must be filled with a tensor of the same shape and the checkpoint must
    have no other weights, else ``CheckpointError`` names the missing, unexpected and mismatched keys (a checkpoint
    of another architecture fails here). ``strict=False``: loads the keys that match in name and shape (e.g. a
    backbone under a head with another number of keypoints) and reports the rest; it still fails when no backbone
    weight matches. A path is read with ``weights_only=True``: tensors and plain metadata only.
    """
    ours = model.state_dict()
    theirs: dict[str, torch.Tensor] = {}
    for key, value in read_state_dict(path_or_state_dict).items():
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
            + _describe(report) + ". Is it a checkpoint of this architecture (e.g. Lite-HRNet-18 vs -30, RTMPose-s "
            "vs -m, the same number of keypoints, for SimCC heads the same input size)? strict=False loads the "
            "matching part.")
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
