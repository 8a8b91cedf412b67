"""CSPNeXt (RTMDet, Lyu et al. 2022), the backbone of RTMPose: a stem, then four stages of a stride-2 conv and a
CSP layer of CSPNeXt blocks (3x3 conv, depthwise-separable 5x5 conv), channel attention; SPP in the last stage.

Faithful to MMPose's ``CSPNeXt`` (``mmpose/models/backbones/cspnext.py``, the same as mmdet's) as RTMPose's configs
build it: arch P5, ``expand_ratio`` 0.5, channel attention, BN (eps 1e-5: the configs' SyncBN) and SiLU. Module names
are MMPose's (``stem.0.conv``, ``stage1.1.blocks.0.conv2.depthwise_conv.bn``, ``stage4.1.conv1``...), so checkpoints
map by prefix only. ``forward`` returns the last stage's features (stride 32), as ``out_indices=(4,)``.
"""

from __future__ import annotations

import torch
from torch import nn

from .lite_hrnet import ConvModule

# MMPose's arch "P5": (in_channels, out_channels, num_blocks, add_identity, use_spp) per stage, before scaling.
P5 = ((64, 128, 3, True, False), (128, 256, 6, True, False), (256, 512, 6, True, False), (512, 1024, 3, False, True))


class DepthwiseSeparableConvModule(nn.Module):
    """mmcv's DepthwiseSeparableConvModule with its defaults: depthwise kxk + BN + SiLU, then 1x1 + BN + SiLU."""

    def __init__(self, cin: int, cout: int, k: int):
        super().__init__()
        self.depthwise_conv = ConvModule(cin, cin, k, groups=cin, act="silu")
        self.pointwise_conv = ConvModule(cin, cout, 1, act="silu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


class CSPNeXtBlock(nn.Module):
    """3x3 conv, then depthwise-separable 5x5 conv; a residual when ``add_identity`` (expansion 1.0 in CSP layers)."""

    def __init__(self, channels: int, add_identity: bool):
        super().__init__()
        self.conv1 = ConvModule(channels, channels, 3, act="silu")
        self.conv2 = DepthwiseSeparableConvModule(channels, channels, 5)
        self.add_identity = add_identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class ChannelAttention(nn.Module):
    """Global average pool, 1x1 conv with bias, hard sigmoid, multiply."""

    def __init__(self, channels: int):
        super().__init__()
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(channels, channels, 1)
        self.act = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.act(self.fc(self.global_avgpool(x)))


class CSPLayer(nn.Module):
    """Two 1x1 convs to half width; blocks on the main one; concat (main, short); channel attention; 1x1 conv."""

    def __init__(self, cin: int, cout: int, num_blocks: int, add_identity: bool, expand_ratio: float = 0.5):
        super().__init__()
        mid = int(cout * expand_ratio)
        self.main_conv = ConvModule(cin, mid, 1, act="silu")
        self.short_conv = ConvModule(cin, mid, 1, act="silu")
        self.final_conv = ConvModule(2 * mid, cout, 1, act="silu")
        self.blocks = nn.Sequential(*[CSPNeXtBlock(mid, add_identity) for _ in range(num_blocks)])
        self.attention = ChannelAttention(2 * mid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat((self.blocks(self.main_conv(x)), self.short_conv(x)), dim=1)
        return self.final_conv(self.attention(out))


class SPPBottleneck(nn.Module):
    """1x1 conv to half width, concat with its 5/9/13 max pools (stride 1), 1x1 conv."""

    def __init__(self, cin: int, cout: int, kernel_sizes: tuple[int, ...] = (5, 9, 13)):
        super().__init__()
        mid = cin // 2
        self.conv1 = ConvModule(cin, mid, 1, act="silu")
        self.poolings = nn.ModuleList([nn.MaxPool2d(k, stride=1, padding=k // 2) for k in kernel_sizes])
        self.conv2 = ConvModule(mid * (len(kernel_sizes) + 1), cout, 1, act="silu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [pool(x) for pool in self.poolings], dim=1))


class CSPNeXt(nn.Module):
    """The CSPNeXt P5 backbone scaled by ``deepen_factor`` (blocks) and ``widen_factor`` (channels).

    ``spp=False`` (ours, not MMPose's) leaves out stage 4's SPP bottleneck. Its 5/9/13 max pools cover the whole
    stride-32 map (3x4 at 96x128, 6x8 at 192x256), and trained from scratch the model then never leaves the
    constant-prior solution; MMPose starts this backbone from ImageNet weights.
    """

    def __init__(self, deepen_factor: float, widen_factor: float, expand_ratio: float = 0.5, spp: bool = True):
        super().__init__()
        stem = int(P5[0][0] * widen_factor)
        self.stem = nn.Sequential(ConvModule(3, stem // 2, 3, stride=2, act="silu"),
                                  ConvModule(stem // 2, stem // 2, 3, act="silu"),
                                  ConvModule(stem // 2, stem, 3, act="silu"))
        for i, (cin, cout, blocks, add_identity, use_spp) in enumerate(P5):
            cin, cout = int(cin * widen_factor), int(cout * widen_factor)
            stage: list[nn.Module] = [ConvModule(cin, cout, 3, stride=2, act="silu")]
            if use_spp:  # spp=False: an Identity in its place, so module names (stage4.2...) stay MMPose's
                stage.append(SPPBottleneck(cout, cout) if spp else nn.Identity())
            stage.append(CSPLayer(cout, cout, max(round(blocks * deepen_factor), 1), add_identity, expand_ratio))
            setattr(self, f"stage{i + 1}", nn.Sequential(*stage))
        self.out_channels = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i in range(len(P5)):
            x = getattr(self, f"stage{i + 1}")(x)
        return x
