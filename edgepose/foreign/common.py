"""Shared by the readers of foreign model formats: the keypoint layout a keypoint count implies, and tensor dims."""

from __future__ import annotations

from edgepose.backends.base import TensorSpec
from edgepose.coco import layout as coco


def keypoint_fields(count: int | None) -> dict:
    """Card fields for a model with ``count`` keypoints: none for COCO-17 or an unknown count (the card's COCO
    default), else generic names ``kpt_0`` ... (the model carries no names, flip pairs or skeleton)."""
    if count is None or count == len(coco.KEYPOINTS):
        return {}
    return {"keypoints": [f"kpt_{i}" for i in range(count)]}


def static_dims(spec: TensorSpec) -> tuple[int, ...] | None:
    """The dims of ``spec`` after the batch axis when all are static, else None."""
    dims = spec.shape[1:]
    return None if any(d is None for d in dims) else tuple(int(d) for d in dims)


def output_keypoints(outputs: list[TensorSpec], names: tuple[str, ...] = ()) -> int | None:
    """The keypoint count (axis 1) of the output named first in ``names`` (else the first output), if static."""
    by_name = {s.name: s for s in outputs}
    spec = next((by_name[n] for n in names if n in by_name), outputs[0] if outputs else None)
    if spec is None or len(spec.shape) < 2 or spec.shape[1] is None:
        return None
    return int(spec.shape[1])
