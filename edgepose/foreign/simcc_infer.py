"""A card for a bare RTMPose ONNX (rtmlib's downloads): inferred from its two SimCC outputs, with RTMPose's published
preprocessing assumed.

rtmlib's ``RTMPose`` (rtmlib/tools/pose_estimation/rtmpose.py) takes the input size from the model, ImageNet
mean/std on the 0-255 scale, bbox padding 1.25 and split ratio 2.0. The RTMPose configs of MMPose train on RGB
(``bgr_to_rgb=True``) with ``SimCCLabel(sigma=(4.9, 5.66))`` at 192x256, (5.66, 5.66) at 256x256 and (6.0, 6.93) at
288x384: sigma = sqrt(side / 8) per axis. Here the split ratio is measured (output length / input side), the rest is
assumed, and the card's name and ``extra`` say so.
"""

from __future__ import annotations

import math

from edgepose.backends.base import Backend, TensorSpec
from edgepose.card import ModelCard
from edgepose.coco import layout as coco
from edgepose.foreign.common import keypoint_fields, static_dims

RTMPOSE_MEAN = (123.675, 116.28, 103.53)
RTMPOSE_STD = (58.395, 57.12, 57.375)
RTMPOSE_PADDING = 1.25
INFERRED = "inferred"  # the card name of an inferred card starts with this


class InferredCardWarning(UserWarning):
    """A model's card was inferred from its tensor shapes and published defaults, not read from the model."""


def rtmpose_sigma(side: int) -> float:
    """The SimCC label sigma RTMPose's configs use for an input side of ``side`` pixels: sqrt(side / 8), 2 decimals."""
    return round(math.sqrt(side / 8.0), 2)


def _simcc_pair(outputs: list[TensorSpec], width: int, height: int) -> tuple[TensorSpec, TensorSpec, float] | None:
    """(x output, y output, split ratio) when the model has two (N, K, L) outputs with Lx / W == Ly / H."""
    if len(outputs) != 2:
        return None
    dims = [static_dims(s) for s in outputs]
    if any(d is None or len(d) != 2 for d in dims) or dims[0][0] != dims[1][0]:
        return None
    first, second = outputs
    if first.name == "simcc_y" or second.name == "simcc_x":  # named the other way round
        first, second = second, first
    orders = [(first, second), (second, first)]
    for x_spec, y_spec in orders:
        ratio = x_spec.shape[2] / width
        if ratio > 0 and math.isclose(y_spec.shape[2] / height, ratio, rel_tol=1e-6):
            return x_spec, y_spec, ratio
    return None


def infer_simcc_card(backend: Backend) -> ModelCard | None:
    """An RTMPose card for a model without one whose outputs are SimCC vectors (N, K, W*r) and (N, K, H*r), or None
    when the model does not look like that (one static (N, 3, H, W) input, two such outputs with one ratio r)."""
    if len(backend.inputs) != 1:
        return None
    spec = backend.inputs[0]
    dims = static_dims(spec)
    if dims is None or len(dims) != 3 or dims[0] != 3:
        return None
    height, width = dims[1], dims[2]
    found = _simcc_pair(backend.outputs, width, height)
    if found is None:
        return None
    x_spec, y_spec, ratio = found
    sigma = (rtmpose_sigma(width), rtmpose_sigma(height))
    count = int(x_spec.shape[1])
    assumed = {"mean": list(RTMPOSE_MEAN), "std": list(RTMPOSE_STD), "color": "rgb", "sigma": list(sigma),
               "bbox_padding": RTMPOSE_PADDING, "decode": "none",
               "keypoints": "COCO-17" if not keypoint_fields(count) else f"{count} unnamed"}
    return ModelCard(
        input_size=(width, height), mean=RTMPOSE_MEAN, std=RTMPOSE_STD, color="rgb", codec="simcc",
        simcc_split_ratio=ratio, sigma=sigma, decode="none", bbox_padding=RTMPOSE_PADDING,
        input_name=spec.name, output_names=(x_spec.name, y_spec.name), **keypoint_fields(count),
        name=f"{INFERRED}: RTMPose SimCC card from output shapes, RTMPose preprocessing assumed",
        extra={INFERRED: {"from": "simcc output shapes", "measured": ["input_size", "simcc_split_ratio"],
                          "assumed": assumed}},
    )


def inferred_message(card: ModelCard, source: str) -> str:
    """One line naming what an inferred card measured and what it assumed."""
    w, h = card.input_size
    sx, sy = card.sigma if isinstance(card.sigma, tuple) else (card.sigma, card.sigma)
    layout = "COCO-17 keypoints" if card.keypoints == coco.KEYPOINTS else f"{card.num_keypoints} unnamed keypoints"
    return (f"{source} carries no edgepose model card: inferred an RTMPose SimCC card from its outputs "
            f"{list(card.output_names)} (input {w}x{h}, split ratio {card.simcc_split_ratio:g}, {layout}) and "
            f"ASSUMED RTMPose preprocessing: mean {list(card.mean)}, std {list(card.std)}, RGB input (rtmlib feeds "
            f"BGR; MMPose trains RTMPose on RGB), sigma ({sx:g}, {sy:g}), bbox padding {card.bbox_padding:g}, no DARK; "
            f"embed the right card with 'edgepose card {source} --set CARD.yaml --out NEW.onnx' to silence this")
