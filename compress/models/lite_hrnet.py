"""Lite-HRNet (Yu et al., "Lite-HRNet: A Lightweight High-Resolution Network", CVPR 2021).

Faithful to the official code (HRNet/Lite-HRNet, as adapted in MMPose's ``litehrnet.py``): the same blocks, the same
module names (so that MMPose checkpoints load by prefix only) and the same fusion arithmetic, quirk included (see
``LiteHRModule.forward``). ``LITE`` modules use conditional channel weighting blocks; ``NAIVE`` ones use shuffle blocks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .heads import PoseModel, check_divisible, init_conv_normal, make_head


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle, written without the batch size so that ONNX export keeps a dynamic batch."""
    c = x.shape[1]
    return x.unflatten(1, (groups, c // groups)).transpose(1, 2).flatten(1, 2)


class ConvModule(nn.Module):
    """mmcv's ConvModule: conv (bias only without norm), optional BN named ``bn``, optional activation (``act``:
    "relu", "sigmoid", "silu" or None)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, norm: bool = True,
                 act: str | None = "relu"):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=not norm)
        self.bn = nn.BatchNorm2d(cout) if norm else None
        activation = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "silu": nn.SiLU, None: None}[act]
        self.activate = activation() if activation is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return x if self.activate is None else self.activate(x)


def dw_pw(cin: int, cout: int, stride: int, relu: bool) -> list[nn.Module]:
    """Depthwise 3x3 + BN, then 1x1 + BN (+ ReLU): the plain layers of fuse and transition paths."""
    layers = [nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
              nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout)]
    return layers + [nn.ReLU()] if relu else layers


class SpatialWeighting(nn.Module):
    """SE-style weighting of one branch: global pool, 1x1 + ReLU, 1x1 + sigmoid (no BN), multiply."""

    def __init__(self, channels: int, ratio: int = 4):
        super().__init__()
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.conv1 = ConvModule(channels, int(channels / ratio), 1, norm=False, act="relu")
        self.conv2 = ConvModule(int(channels / ratio), channels, 1, norm=False, act="sigmoid")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv2(self.conv1(self.global_avgpool(x)))


class CrossResolutionWeighting(nn.Module):
    """Pool every branch to the smallest resolution, 1x1 + BN + ReLU, 1x1 + BN + sigmoid, upsample, multiply."""

    def __init__(self, channels: list[int], ratio: int):
        super().__init__()
        self.channels = list(channels)
        total = sum(channels)
        self.conv1 = ConvModule(total, int(total / ratio), 1, act="relu")
        self.conv2 = ConvModule(int(total / ratio), total, 1, act="sigmoid")

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        size = x[-1].shape[-2:]
        out = torch.cat([F.adaptive_avg_pool2d(s, size) for s in x[:-1]] + [x[-1]], dim=1)
        out = torch.split(self.conv2(self.conv1(out)), self.channels, dim=1)
        return [s * F.interpolate(a, size=s.shape[-2:], mode="nearest") for s, a in zip(x, out, strict=True)]


class ConditionalChannelWeighting(nn.Module):
    """Split each branch; weight one half (cross-resolution, depthwise 3x3, spatial); concat; shuffle."""

    def __init__(self, in_channels: list[int], reduce_ratio: int):
        super().__init__()
        half = [c // 2 for c in in_channels]
        self.cross_resolution_weighting = CrossResolutionWeighting(half, reduce_ratio)
        self.depthwise_convs = nn.ModuleList([ConvModule(c, c, 3, groups=c, act=None) for c in half])
        self.spatial_weighting = nn.ModuleList([SpatialWeighting(c, 4) for c in half])

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        halves = [s.chunk(2, dim=1) for s in x]
        x2 = self.cross_resolution_weighting([s[1] for s in halves])
        x2 = [sw(dw(s)) for s, dw, sw in zip(x2, self.depthwise_convs, self.spatial_weighting, strict=True)]
        return [channel_shuffle(torch.cat([s[0], s2], dim=1), 2) for s, s2 in zip(halves, x2, strict=True)]


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 block, stride 1 (the only one Lite-HRNet's naive modules use): split, 1x1-dw3x3-1x1, shuffle."""

    def __init__(self, channels: int):
        super().__init__()
        c = channels // 2
        self.branch2 = nn.Sequential(ConvModule(c, c, 1), ConvModule(c, c, 3, groups=c, act=None), ConvModule(c, c, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=1)
        return channel_shuffle(torch.cat((x1, self.branch2(x2)), dim=1), 2)


class Stem(nn.Module):
    """conv3x3 s2, then a shuffle-style block whose two halves both go down by 2 (depthwise s2): stride 4."""

    def __init__(self, in_channels: int, stem_channels: int, out_channels: int, expand_ratio: float):
        super().__init__()
        self.out_channels = out_channels
        mid = int(round(stem_channels * expand_ratio))
        half = stem_channels // 2
        inc = out_channels - half if stem_channels == out_channels else out_channels - stem_channels
        self.conv1 = ConvModule(in_channels, stem_channels, 3, stride=2)
        self.branch1 = nn.Sequential(ConvModule(half, half, 3, stride=2, groups=half, act=None),
                                     ConvModule(half, inc, 1))
        self.expand_conv = ConvModule(half, mid, 1)
        self.depthwise_conv = ConvModule(mid, mid, 3, stride=2, groups=mid, act=None)
        self.linear_conv = ConvModule(mid, half if stem_channels == out_channels else stem_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.conv1(x).chunk(2, dim=1)
        x2 = self.linear_conv(self.depthwise_conv(self.expand_conv(x2)))
        return channel_shuffle(torch.cat((self.branch1(x1), x2), dim=1), 2)


class LiteHRModule(nn.Module):
    """Blocks on every branch (``LITE``: weighting blocks across branches; ``NAIVE``: shuffle blocks per branch),
    then HRNet fusion: every output branch sums all branches (upsampled by 1x1+BN+nearest, or downsampled by
    stride-2 depthwise+pointwise steps), then ReLU."""

    def __init__(self, num_branches: int, num_blocks: int, in_channels: list[int], reduce_ratio: int,
                 module_type: str):
        super().__init__()
        self.in_channels = list(in_channels)
        self.num_branches = num_branches
        self.module_type = module_type
        if module_type == "LITE":
            self.layers = nn.Sequential(*[ConditionalChannelWeighting(in_channels, reduce_ratio)
                                          for _ in range(num_blocks)])
        elif module_type == "NAIVE":
            self.layers = nn.ModuleList([nn.Sequential(*[ShuffleUnit(c) for _ in range(num_blocks)])
                                         for c in in_channels])
        else:
            raise ValueError(f"module_type must be 'LITE' or 'NAIVE', got {module_type!r}")
        self.fuse_layers = self._make_fuse_layers() if num_branches > 1 else None
        self.relu = nn.ReLU()

    def _make_fuse_layers(self) -> nn.ModuleList:
        ch = self.in_channels
        fuse_layers = nn.ModuleList()
        for i in range(self.num_branches):
            row = nn.ModuleList()
            for j in range(self.num_branches):
                if j > i:
                    row.append(nn.Sequential(nn.Conv2d(ch[j], ch[i], 1, bias=False), nn.BatchNorm2d(ch[i]),
                                             nn.Upsample(scale_factor=2 ** (j - i), mode="nearest")))
                elif j == i:
                    row.append(None)
                else:
                    steps = [nn.Sequential(*dw_pw(ch[j], ch[j], 2, relu=True)) for _ in range(i - j - 1)]
                    steps.append(nn.Sequential(*dw_pw(ch[j], ch[i], 2, relu=False)))
                    row.append(nn.Sequential(*steps))
            fuse_layers.append(row)
        return fuse_layers

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.module_type == "LITE":
            out = self.layers(x)
        else:
            out = [branch(s) for branch, s in zip(self.layers, x, strict=True)]
        if self.fuse_layers is None:
            return out
        # The official code sums ``y = out[0]`` (branch 0) or ``y = fuse[i][0](out[0])`` (others) and then loops over
        # *all* j, so the j = 0 term is added twice; for branch 0 the addition is in place, so ``out[0]`` becomes the
        # fused (pre-ReLU) sum that the other branches then downsample. Published weights were trained so; we
        # reproduce it without in-place ops, computing each downsampling once and doubling it.
        y0 = out[0] + out[0]
        for j in range(1, self.num_branches):
            y0 = y0 + self.fuse_layers[0][j](out[j])
        fused = [self.relu(y0)]
        for i in range(1, self.num_branches):
            down = self.fuse_layers[i][0](y0)
            y = down + down
            for j in range(1, self.num_branches):
                y = y + (out[j] if i == j else self.fuse_layers[i][j](out[j]))
            fused.append(self.relu(y))
        return fused


class DepthwiseSeparableConvModule(nn.Module):
    """mmcv's DepthwiseSeparableConvModule as IterativeHead uses it: dw3x3 + BN, then 1x1 + BN + ReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise_conv = ConvModule(cin, cin, 3, groups=cin, act=None)
        self.pointwise_conv = ConvModule(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


class IterativeHead(nn.Module):
    """Top-down refinement from the lowest to the highest resolution branch (part of the backbone in MMPose)."""

    def __init__(self, in_channels: list[int]):
        super().__init__()
        rev = list(in_channels)[::-1]
        self.projects = nn.ModuleList([DepthwiseSeparableConvModule(rev[i], rev[min(i + 1, len(rev) - 1)])
                                       for i in range(len(rev))])

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        y: list[torch.Tensor] = []
        last = None
        for i, s in enumerate(x[::-1]):
            if last is not None:
                s = s + F.interpolate(last, size=s.shape[-2:], mode="bilinear", align_corners=True)
            last = self.projects[i](s)
            y.append(last)
        return y[::-1]


class LiteHRNet(nn.Module):
    """The Lite-HRNet backbone; ``forward`` returns the highest-resolution (stride 4) features of the head layer.

    ``spec`` keys (as MMPose's ``extra``): ``stem`` (stem_channels, out_channels, expand_ratio), ``num_modules``,
    ``num_branches``, ``num_blocks``, ``module_type``, ``reduce_ratios``, ``num_channels`` (one tuple per stage).
    """

    def __init__(self, spec: dict, in_channels: int = 3):
        super().__init__()
        self.spec = spec
        self.stem = Stem(in_channels, **spec["stem"])
        self.num_stages = len(spec["num_modules"])
        last = [self.stem.out_channels]
        for i in range(self.num_stages):
            channels = list(spec["num_channels"][i])
            setattr(self, f"transition{i}", self._make_transition_layer(last, channels))
            modules = [LiteHRModule(spec["num_branches"][i], spec["num_blocks"][i], channels,
                                    spec["reduce_ratios"][i], spec["module_type"][i])
                       for _ in range(spec["num_modules"][i])]
            setattr(self, f"stage{i}", nn.Sequential(*modules))
            last = channels
        self.out_channels = last[0]
        self.head_layer = IterativeHead(last)

    @staticmethod
    def _make_transition_layer(pre: list[int], cur: list[int]) -> nn.ModuleList:
        layers = nn.ModuleList()
        for i, c in enumerate(cur):
            if i < len(pre):
                layers.append(nn.Sequential(*dw_pw(pre[i], c, 1, relu=True)) if c != pre[i] else None)
            else:
                steps = [nn.Sequential(*dw_pw(pre[-1], c if j == i - len(pre) else pre[-1], 2, relu=True))
                         for j in range(i + 1 - len(pre))]
                layers.append(nn.Sequential(*steps))
        return layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.stem(x)]
        for i in range(self.num_stages):
            transition = getattr(self, f"transition{i}")
            xs = []
            for j, t in enumerate(transition):
                src = y[j] if j < len(y) else y[-1]
                xs.append(src if t is None else t(src))
            y = getattr(self, f"stage{i}")(xs)
        return self.head_layer(y)[0]


def lite_spec(num_modules: tuple[int, ...], module_type: str = "LITE",
              num_channels: tuple[int, ...] = (40, 80, 160, 320), stem: tuple[int, int] = (32, 32),
              num_blocks: int = 2, reduce_ratio: int = 8) -> dict:
    """A Lite-HRNet spec: stage ``i`` has ``i + 2`` branches of widths ``num_channels[:i + 2]``."""
    n = len(num_modules)
    return {
        "stem": {"stem_channels": stem[0], "out_channels": stem[1], "expand_ratio": 1},
        "num_modules": tuple(num_modules),
        "num_branches": tuple(i + 2 for i in range(n)),
        "num_blocks": (num_blocks,) * n,
        "module_type": (module_type,) * n,
        "reduce_ratios": (reduce_ratio,) * n,
        "num_channels": tuple(tuple(num_channels[: i + 2]) for i in range(n)),
    }


# The paper's variants (MMPose configs litehrnet_18/30 and naive_litehrnet_18/30, COCO 256x192).
SPECS = {
    "lite_hrnet_18": lite_spec((2, 4, 2)),
    "lite_hrnet_30": lite_spec((3, 8, 3)),
    "naive_lite_hrnet_18": lite_spec((2, 4, 2), "NAIVE"),
    "naive_lite_hrnet_30": lite_spec((3, 8, 3), "NAIVE"),
    # Ours, not the paper's: Lite-HRNet at half width with (1, 2, 1) modules, about 0.05 GFLOPs at 256x192,
    # for CPU tests and the quickstart.
    "lite_hrnet_tiny": lite_spec((1, 2, 1), num_channels=(20, 40, 80, 160)),
}


class LiteHRNetPose(PoseModel):
    """Lite-HRNet + head on its stride-4 branch (MMPose: ``HeatmapHead`` without deconvolutions, a final 1x1 conv)."""

    def __init__(self, spec: dict, num_keypoints: int = 17, input_size: tuple[int, int] = (192, 256),
                 head: str = "heatmap", simcc_split_ratio: float | None = None):
        super().__init__(num_keypoints, input_size, head, simcc_split_ratio)
        check_divisible(self.input_size, 2 ** (len(spec["num_modules"]) + 2), "Lite-HRNet")
        self.backbone = LiteHRNet(spec)
        self.keypoint_head = make_head(self, self.backbone.out_channels, 4)
        init_conv_normal(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)
