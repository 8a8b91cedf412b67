"""Stacked Hourglass (Newell, Yang and Deng, "Stacked Hourglass Networks for Human Pose Estimation", ECCV 2016).

As in the paper's code: a stride-4 stem (conv7x7 s2, residual, max-pool, two residuals), then ``stacks`` hourglasses
of depth 4 built from pre-activation bottleneck residuals (max-pool down, nearest up), each followed by a residual,
a 1x1 conv+BN+ReLU and a 1x1 conv to K heatmaps; between stacks the features and the heatmaps are mapped back by 1x1
convs and added to the stack's input. Every stack's heatmaps are supervised (intermediate supervision).

Fast Pose Distillation (Zhang, Zhu and Ye, CVPR 2019) uses an 8-stack, 256-channel teacher and a 4-stack,
128-channel student: ``build_model("hourglass")`` and ``build_model("hourglass_student")``.
"""

from __future__ import annotations

import torch
from torch import nn

from .heads import PoseModel, check_divisible, make_head


class Residual(nn.Module):
    """Pre-activation bottleneck: BN-ReLU-1x1 (C/2), BN-ReLU-3x3 (C/2), BN-ReLU-1x1 (C), plus a 1x1 skip if needed."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        mid = cout // 2
        self.block = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, mid, 1),
            nn.BatchNorm2d(mid), nn.ReLU(), nn.Conv2d(mid, mid, 3, padding=1),
            nn.BatchNorm2d(mid), nn.ReLU(), nn.Conv2d(mid, cout, 1),
        )
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x) + self.skip(x)


class Hourglass(nn.Module):
    """One hourglass of ``depth`` levels: at each level a full-resolution residual branch plus a pooled branch that
    recurses, is upsampled (nearest, x2) and added."""

    def __init__(self, depth: int, channels: int):
        super().__init__()
        self.up1 = Residual(channels, channels)
        self.pool = nn.MaxPool2d(2, 2)
        self.low1 = Residual(channels, channels)
        self.low2 = Hourglass(depth - 1, channels) if depth > 1 else Residual(channels, channels)
        self.low3 = Residual(channels, channels)
        self.up2 = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up1(x) + self.up2(self.low3(self.low2(self.low1(self.pool(x)))))


def conv_bn_relu(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class StackedHourglass(nn.Module):
    """The stacks without the final heatmap conv: ``forward`` -> (last stack's features, heatmaps of the others)."""

    def __init__(self, stacks: int, channels: int, num_keypoints: int, depth: int = 4):
        super().__init__()
        self.stacks = stacks
        self.stem = nn.Sequential(conv_bn_relu(3, 64, 7, 2), Residual(64, 128), nn.MaxPool2d(2, 2),
                                  Residual(128, 128), Residual(128, channels))
        self.hourglasses = nn.ModuleList([Hourglass(depth, channels) for _ in range(stacks)])
        self.features = nn.ModuleList([nn.Sequential(Residual(channels, channels), conv_bn_relu(channels, channels, 1))
                                       for _ in range(stacks)])
        self.score_layers = nn.ModuleList([nn.Conv2d(channels, num_keypoints, 1) for _ in range(stacks - 1)])
        self.merge_features = nn.ModuleList([nn.Conv2d(channels, channels, 1) for _ in range(stacks - 1)])
        self.merge_scores = nn.ModuleList([nn.Conv2d(num_keypoints, channels, 1) for _ in range(stacks - 1)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = self.stem(x)
        scores: list[torch.Tensor] = []
        for i in range(self.stacks):
            y = self.features[i](self.hourglasses[i](x))
            if i < self.stacks - 1:
                score = self.score_layers[i](y)
                scores.append(score)
                x = x + self.merge_features[i](y) + self.merge_scores[i](score)
        return y, scores


class HourglassPose(PoseModel):
    """Stacked hourglass + head on the last stack (for heatmaps: the last stack's 1x1 conv to K).

    In training mode ``forward`` also returns ``"intermediate"``: every stack's heatmaps, in order; with a heatmap head
    the last entry is ``"heatmaps"`` itself, with a SimCC head the last stack is supervised by SimCC only and the list
    holds the other ``stacks - 1`` stacks. In eval mode only the canonical outputs are returned.
    """

    def __init__(self, num_keypoints: int = 17, input_size: tuple[int, int] = (192, 256), head: str = "heatmap",
                 stacks: int = 8, channels: int = 256, simcc_split_ratio: float | None = None):
        super().__init__(num_keypoints, input_size, head, simcc_split_ratio)
        if stacks < 1 or channels < 2 or channels % 2:
            raise ValueError(f"hourglass needs stacks >= 1 and an even channels >= 2, got {stacks=}, {channels=}")
        check_divisible(self.input_size, 64, "Stacked Hourglass (stride-4 stem, 4 pooling levels)")
        self.stacks, self.channels = stacks, channels
        self.backbone = StackedHourglass(stacks, channels, num_keypoints)
        self.keypoint_head = make_head(self, channels, 4)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)[0]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats, scores = self.backbone(x)
        out = self.keypoint_head(feats)
        if self.training:
            out["intermediate"] = scores + ([out["heatmaps"]] if "heatmaps" in out else [])
        return out
