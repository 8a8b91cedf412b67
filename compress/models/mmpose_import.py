"""An MMPose checkpoint as a ready model: the architecture named by ``--arch``, its weights loaded strictly, and the
card MMPose's COCO config implies (``mmpose_cards``). What `edgepose export/verify MMPOSE.pth --arch NAME` use.
"""

from __future__ import annotations

import os

import torch

from compress.models import build_model
from compress.models.mmpose_cards import MMPOSE_CODECS, mmpose_card
from compress.models.mmpose_weights import from_mmpose_key, load_mmpose_checkpoint, read_state_dict
from edgepose.card import ModelCard
from edgepose.errors import CheckpointError


def _keypoints(tensors: dict[str, torch.Tensor]) -> int:
    """The number of keypoints the checkpoint's head predicts (its last layer's output channels), 17 if unclear."""
    for key in ("head.final_layer.weight", "keypoint_head.final_layer.weight"):  # heatmap and RTMCC heads alike
        if key in tensors:
            return int(tensors[key].shape[0])
    return 17


def fitting_arch(tensors: dict[str, torch.Tensor], input_size: tuple[int, int], exclude: str = "") -> str | None:
    """The known architecture whose weights have exactly the checkpoint's names and shapes, if one does."""
    theirs = {m: v.shape for k, v in tensors.items() if (m := from_mmpose_key(k)) is not None}
    for arch in MMPOSE_CODECS:
        if arch == exclude:
            continue
        ours = build_model(arch, num_keypoints=_keypoints(tensors), input_size=input_size).state_dict()
        if set(ours) == set(theirs) and all(ours[k].shape == theirs[k] for k in ours):
            return arch
    return None


def load_mmpose_model(path: str | os.PathLike, arch: str, input_size: tuple[int, int] = (192, 256),
                      card: ModelCard | None = None) -> tuple[torch.nn.Module, ModelCard]:
    """Build ``arch`` at ``input_size`` (width, height), load the MMPose checkpoint at ``path`` strictly, and return it
    (eval mode) with ``card`` or the card of MMPose's COCO config for ``arch``.

    Keys that do not fit raise CheckpointError naming the first mismatching ones and, when one fits, the arch to use.
    """
    tensors = read_state_dict(os.fspath(path))
    model = build_model(arch, num_keypoints=_keypoints(tensors), input_size=input_size)
    try:
        load_mmpose_checkpoint(model, tensors, strict=True)
    except CheckpointError as exc:
        other = fitting_arch(tensors, input_size, exclude=arch)
        hint = f" It fits --arch {other}." if other else " No known --arch fits it."
        raise CheckpointError(f"{path}: {exc}{hint}") from exc
    if card is None:
        card = mmpose_card(arch, input_size, name=f"mmpose:{arch} ({os.path.basename(os.fspath(path))})")
    return model.eval(), card
