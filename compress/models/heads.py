"""The model base class and the two output heads: heatmaps (MSRA/UDP targets) and SimCC (1-D classification).

Module names follow MMPose's ``HeatmapHead`` / ``TopdownHeatmapSimpleHead`` (``deconv_layers``, ``final_layer``) and
``RTMCCHead`` (``final_layer``, ``mlp``, ``cls_x``, ``cls_y``) so that published weights map by prefix only.
"""

from __future__ import annotations

import torch
from torch import nn

HEADS = ("heatmap", "simcc")


class PoseModel(nn.Module):
    """Base of every model of the zoo: a backbone producing features and a head producing the named outputs.

    Attributes (the contract the trainer, distillation, pruning and export rely on):

    - ``arch``: the ``build_model`` arguments, so that ``build_model(**model.arch)`` rebuilds the model.
    - ``input_size`` (w, h), ``num_keypoints``, ``head`` ("heatmap" | "simcc").
    - ``heatmap_size`` (w/4, h/4) for heatmap heads, else None; ``simcc_split_ratio`` for SimCC heads, else None.
    - ``output_names``: ``("heatmaps",)`` or ``("simcc_x", "simcc_y")``, the keys ``forward`` returns in eval mode.

    Subclasses set ``self.backbone`` and ``self.keypoint_head`` and implement ``features`` (the tensor the head reads).
    """

    def __init__(self, num_keypoints: int, input_size: tuple[int, int], head: str, simcc_split_ratio: float | None):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}; valid heads: {', '.join(HEADS)}")
        if head == "heatmap" and simcc_split_ratio is not None:
            raise ValueError("simcc_split_ratio only applies to head='simcc'; drop it or choose the SimCC head")
        w, h = int(input_size[0]), int(input_size[1])
        self.arch: dict = {}
        self.input_size = (w, h)
        self.num_keypoints = int(num_keypoints)
        self.head = head
        self.heatmap_size = (w // 4, h // 4) if head == "heatmap" else None
        self.simcc_split_ratio = (2.0 if simcc_split_ratio is None else float(simcc_split_ratio)) if head == "simcc" \
            else None
        self.output_names = ("heatmaps",) if head == "heatmap" else ("simcc_x", "simcc_y")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x`` (N,3,H,W) float -> ``{"heatmaps": (N,K,H/4,W/4)}`` or ``{"simcc_x": (N,K,W*r), "simcc_y": (N,K,H*r)}``.

        Subclasses may add training-only outputs (the hourglass's ``"intermediate"``); eval mode returns exactly
        ``output_names``.
        """
        return self.keypoint_head(self.features(x))


def init_conv_normal(module: nn.Module, std: float = 0.001) -> None:
    """MMPose's initialisation of pose backbones and heads: conv/deconv weights N(0, std), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.modules.conv._ConvNd):
            nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def check_divisible(input_size: tuple[int, int], multiple: int, what: str) -> None:
    """Raise ValueError unless both sides of ``input_size`` (w, h) are positive multiples of ``multiple``."""
    w, h = input_size
    if w <= 0 or h <= 0 or w % multiple or h % multiple:
        raise ValueError(f"{what} needs input_size (w, h) with both sides multiples of {multiple}, got {input_size}; "
                         f"e.g. {(max(1, round(w / multiple)) * multiple, max(1, round(h / multiple)) * multiple)}")


def make_head(model: PoseModel, in_channels: int, feature_stride: int,
              deconv_out_channels: tuple[int, ...] = ()) -> nn.Module:
    """The head ``model.head`` asks for, reading ``in_channels`` features at ``feature_stride``.

    Heatmap heads upsample with ``deconv_out_channels`` (stride 2 each) down to stride 4; SimCC heads read the features
    at their own stride (as MMPose's SimCC/RTMPose configs do) and ignore the deconvolutions.
    """
    if model.head == "heatmap":
        if feature_stride != 4 * 2 ** len(deconv_out_channels):
            raise ValueError(f"heatmap head: stride {feature_stride} with {len(deconv_out_channels)} deconvs is not 4")
        return HeatmapHead(in_channels, model.num_keypoints, deconv_out_channels)
    w, h = model.input_size
    return SimCCHead(in_channels, model.num_keypoints, model.input_size, (w // feature_stride, h // feature_stride),
                     model.simcc_split_ratio, 7 if feature_stride >= 16 else 1)


class HeatmapHead(nn.Module):
    """Optional deconvolutions (k4 s2 p1, no bias, BN, ReLU) then a 1x1 conv to K heatmaps (MMPose ``HeatmapHead``)."""

    def __init__(self, in_channels: int, num_keypoints: int, deconv_out_channels: tuple[int, ...] = ()):
        super().__init__()
        layers: list[nn.Module] = []
        for out in deconv_out_channels:
            layers += [nn.ConvTranspose2d(in_channels, out, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            in_channels = out
        self.deconv_layers = nn.Sequential(*layers) if layers else nn.Identity()
        self.final_layer = nn.Conv2d(in_channels, num_keypoints, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"heatmaps": self.final_layer(self.deconv_layers(x))}


class ScaleNorm(nn.Module):
    """RTMPose's ScaleNorm: ``x / ||x|| * sqrt(d) * g`` over the last dimension, one learned scalar ``g``."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.scale = dim**-0.5
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True) * self.scale
        return x / norm.clamp(min=self.eps) * self.g


class SimCCHead(nn.Module):
    """SimCC head: a conv to K maps, each flattened and classified along x and along y (RTMPose's ``RTMCCHead``).

    ``final_layer`` (conv -> K) -> flatten (N,K,h*w) -> ``mlp`` (ScaleNorm, Linear to 256) -> ``cls_x`` (Linear to
    W*r) and ``cls_y`` (Linear to H*r). The conv is 7x7 on coarse features (stride >= 16, as RTMPose) and 1x1 on
    fine ones (stride 4, as the SimCC paper's head), where a 7x7 conv would cost more than a Lite-HRNet. RTMPose's
    gated attention unit between ``mlp`` and the classifiers is left out (ours: it is slow on CPUs); the RTMPose
    models use the full head, ``rtmcc_head.RTMCCHead``.
    """

    hidden = 256

    def __init__(self, in_channels: int, num_keypoints: int, input_size: tuple[int, int],
                 featuremap_size: tuple[int, int], split_ratio: float = 2.0, final_kernel: int = 7):
        super().__init__()
        w, h = input_size
        fw, fh = featuremap_size
        self.final_layer = nn.Conv2d(in_channels, num_keypoints, final_kernel, padding=final_kernel // 2)
        self.mlp = nn.Sequential(ScaleNorm(fw * fh), nn.Linear(fw * fh, self.hidden, bias=False))
        self.cls_x = nn.Linear(self.hidden, int(w * split_ratio), bias=False)
        self.cls_y = nn.Linear(self.hidden, int(h * split_ratio), bias=False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.mlp(self.final_layer(x).flatten(2))
        return {"simcc_x": self.cls_x(feats), "simcc_y": self.cls_y(feats)}
