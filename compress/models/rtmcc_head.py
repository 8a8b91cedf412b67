"""RTMPose's SimCC head (MMPose ``RTMCCHead``): large-kernel conv, flatten, ScaleNorm + Linear, a gated attention unit
across keypoints, then one classifier per axis.

Module and parameter names are MMPose's (``final_layer``, ``mlp.0.g``, ``mlp.1``, ``gau.uv``, ``gau.o``,
``gau.gamma``, ``gau.beta``, ``gau.ln.g``, ``gau.res_scale.scale``, ``cls_x``, ``cls_y``). The GAU is built as
RTMPose's configs build it: self-attention, no relative position bias, no rotary encoding, no dropout.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .heads import ScaleNorm


class Scale(nn.Module):
    """A learned per-channel scale (MMPose's ``Scale``), for the GAU's residual."""

    def __init__(self, dim: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class GatedAttentionUnit(nn.Module):
    """MMPose's ``RTMCCBlock`` (GAU, "Transformer Quality in Linear Time") over the K keypoint tokens.

    ``x`` (N, K, d) -> ScaleNorm -> ``uv`` Linear to (u: e, v: e, base: s), SiLU -> q, k = base * gamma + beta ->
    attention ``relu(q k^T / sqrt(s))^2`` -> ``u * (attn v)`` -> ``o`` Linear -> plus ``res_scale * x``.
    """

    def __init__(self, dim: int, expansion_factor: int = 2, s: int = 128, eps: float = 1e-5):
        super().__init__()
        self.e = int(dim * expansion_factor)
        self.s = s
        self.uv = nn.Linear(dim, 2 * self.e + s, bias=False)
        self.o = nn.Linear(self.e, dim, bias=False)
        self.gamma = nn.Parameter(torch.rand(2, s))
        self.beta = nn.Parameter(torch.rand(2, s))
        self.ln = ScaleNorm(dim, eps=eps)
        self.act_fn = nn.SiLU()
        self.res_scale = Scale(dim)
        self.sqrt_s = math.sqrt(s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        uv = self.act_fn(self.uv(self.ln(x)))
        u, v, base = torch.split(uv, [self.e, self.e, self.s], dim=2)
        q, k = torch.unbind(base.unsqueeze(2) * self.gamma + self.beta, dim=2)
        kernel = torch.square(F.relu(torch.bmm(q, k.transpose(1, 2)) / self.sqrt_s))
        return self.res_scale(x) + self.o(u * torch.bmm(kernel, v))


class RTMCCHead(nn.Module):
    """``final_layer`` (conv kxk -> K) -> flatten (N, K, h*w) -> ``mlp`` (ScaleNorm, Linear to ``hidden``) -> ``gau``
    -> ``cls_x`` (Linear to W*r) and ``cls_y`` (Linear to H*r): ``{"simcc_x", "simcc_y"}``."""

    def __init__(self, in_channels: int, num_keypoints: int, input_size: tuple[int, int],
                 featuremap_size: tuple[int, int], split_ratio: float = 2.0, final_kernel: int = 7,
                 hidden: int = 256, s: int = 128, expansion_factor: int = 2):
        super().__init__()
        w, h = input_size
        flat = featuremap_size[0] * featuremap_size[1]
        self.final_layer = nn.Conv2d(in_channels, num_keypoints, final_kernel, padding=final_kernel // 2)
        self.mlp = nn.Sequential(ScaleNorm(flat), nn.Linear(flat, hidden, bias=False))
        self.gau = GatedAttentionUnit(hidden, expansion_factor, s)
        self.cls_x = nn.Linear(hidden, int(w * split_ratio), bias=False)
        self.cls_y = nn.Linear(hidden, int(h * split_ratio), bias=False)
        nn.init.normal_(self.final_layer.weight, std=0.001)  # MMPose's default_init_cfg: convs N(0, 0.001),
        nn.init.zeros_(self.final_layer.bias)  # every Linear (the GAU's included) N(0, 0.01)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
        # Ours, not MMPose's: the GAU's output projection starts at zero, so the block starts as its residual. With
        # MMPose's init its attention branch (relu(q k^T)^2 ~ 9 for every token pair: gamma, beta ~ U(0, 1)) outgrows
        # the residual within ~20 AdamW steps from scratch at batch 16, mixes all keypoints, then dies (kernel -> 0)
        # and training sits at the constant prior. Loaded checkpoints overwrite it.
        nn.init.zeros_(self.gau.o.weight)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.gau(self.mlp(self.final_layer(x).flatten(2)))
        return {"simcc_x": self.cls_x(feats), "simcc_y": self.cls_y(feats)}
