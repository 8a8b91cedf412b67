"""HRNet (Sun et al., "Deep High-Resolution Representation Learning for Human Pose Estimation", CVPR 2019).

Faithful to MMPose's ``HRNet`` (``mmpose/models/backbones/hrnet.py``) as the ``td-hm_hrnet-w{32,48}`` COCO configs
build it: a stride-4 stem (two 3x3 s2 convs), a stage of four Bottlenecks, then stages of 2, 3 and 4 parallel
branches of BasicBlocks with exchange units; the last module fuses into the highest-resolution branch only, which
the heatmap head (a 1x1 conv, no deconvolutions) reads. Module names are MMPose's (``conv1``, ``bn1``, ``layer1``,
``transition1``, ``stage2.0.branches.0.0.conv1``, ``stage2.0.fuse_layers.0.1.0``), so checkpoints map by prefix only.
"""

from __future__ import annotations

import torch
from torch import nn

from .heads import PoseModel, check_divisible, init_conv_normal, make_head
from .simple_baseline import BasicBlock, Bottleneck

# Branch widths of stages 2-4 (each the first ``n`` of these); modules per stage; blocks per branch.
SPECS = {"hrnet_w32": (32, 64, 128, 256), "hrnet_w48": (48, 96, 192, 384)}
NUM_MODULES = {2: 1, 3: 4, 4: 3}
NUM_BLOCKS = 4


def _conv_bn(cin: int, cout: int, k: int, stride: int, relu: bool) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


class HRModule(nn.Module):
    """Four BasicBlocks per branch, then the exchange unit: output branch ``i`` sums every branch ``j`` (upsampled
    by 1x1 conv + BN + nearest, or downsampled by 3x3 s2 conv steps), then ReLU. ``out_branches`` 1: only branch 0."""

    def __init__(self, channels: list[int], out_branches: int):
        super().__init__()
        self.branches = nn.ModuleList([nn.Sequential(*[BasicBlock(c, c) for _ in range(NUM_BLOCKS)])
                                       for c in channels])
        n = len(channels)
        self.fuse_layers = nn.ModuleList([nn.ModuleList([self._fuse(channels, i, j) for j in range(n)])
                                          for i in range(out_branches)]) if n > 1 else None
        self.relu = nn.ReLU(inplace=True)

    @staticmethod
    def _fuse(ch: list[int], i: int, j: int) -> nn.Module | None:
        if j > i:
            return nn.Sequential(nn.Conv2d(ch[j], ch[i], 1, bias=False), nn.BatchNorm2d(ch[i]),
                                 nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"))
        if j == i:
            return None
        steps = [_conv_bn(ch[j], ch[j], 3, 2, relu=True) for _ in range(i - j - 1)]
        return nn.Sequential(*steps, _conv_bn(ch[j], ch[i], 3, 2, relu=False))

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        x = [branch(s) for branch, s in zip(self.branches, x, strict=True)]
        if self.fuse_layers is None:
            return x
        fused = []
        for i, row in enumerate(self.fuse_layers):
            y = x[0] if i == 0 else row[0](x[0])
            for j in range(1, len(x)):
                y = y + (x[j] if i == j else row[j](x[j]))
            fused.append(self.relu(y))
        return fused


class HRNet(nn.Module):
    """The HRNet backbone; ``forward`` returns the fused stride-4 branch (``widths[0]`` channels)."""

    def __init__(self, widths: tuple[int, ...]):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        down = nn.Sequential(nn.Conv2d(64, 256, 1, bias=False), nn.BatchNorm2d(256))
        self.layer1 = nn.Sequential(Bottleneck(64, 64, downsample=down), *[Bottleneck(256, 64) for _ in range(3)])
        pre = [256]
        for stage in (2, 3, 4):
            cur = list(widths[:stage])
            setattr(self, f"transition{stage - 1}", self._transition(pre, cur))
            last = NUM_MODULES[stage] - 1
            setattr(self, f"stage{stage}", nn.Sequential(*[HRModule(cur, 1 if stage == 4 and k == last else stage)
                                                           for k in range(NUM_MODULES[stage])]))
            pre = cur
        self.out_channels = widths[0]

    @staticmethod
    def _transition(pre: list[int], cur: list[int]) -> nn.ModuleList:
        layers = nn.ModuleList()
        for i, c in enumerate(cur):
            if i < len(pre):
                layers.append(_conv_bn(pre[i], c, 3, 1, relu=True) if c != pre[i] else None)
            else:
                layers.append(nn.Sequential(*[_conv_bn(pre[-1], c if j == i - len(pre) else pre[-1], 3, 2, relu=True)
                                              for j in range(i + 1 - len(pre))]))
        return layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))
        y = [self.layer1(x)]
        for stage in (2, 3, 4):
            transition = getattr(self, f"transition{stage - 1}")
            # As MMPose: a transition reads the previous stage's last branch (only new branches have one here).
            xs = [y[i] if t is None else t(y[-1]) for i, t in enumerate(transition)]
            y = getattr(self, f"stage{stage}")(xs)
        return y[0]


class HRNetPose(PoseModel):
    """HRNet + head on its stride-4 branch (MMPose: ``HeatmapHead`` without deconvolutions, a final 1x1 conv)."""

    def __init__(self, variant: str, num_keypoints: int = 17, input_size: tuple[int, int] = (192, 256),
                 head: str = "heatmap", simcc_split_ratio: float | None = None):
        super().__init__(num_keypoints, input_size, head, simcc_split_ratio)
        if variant not in SPECS:
            raise ValueError(f"unknown HRNet variant {variant!r}; valid: {', '.join(SPECS)}")
        check_divisible(self.input_size, 32, f"HRNet ({variant}, four branches down to stride 32)")
        self.backbone = HRNet(SPECS[variant])
        self.keypoint_head = make_head(self, self.backbone.out_channels, 4)
        init_conv_normal(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)
