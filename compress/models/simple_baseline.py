"""SimpleBaseline (Xiao, Wu and Wei, "Simple Baselines for Human Pose Estimation and Tracking", ECCV 2018).

A ResNet (our own, torchvision- and MMPose-compatible names: ``conv1``, ``bn1``, ``layer1``..``layer4``, blocks with
``conv1``/``bn1``.. and ``downsample.0/1``; stride on the 3x3 conv, i.e. ResNet v1.5) followed by three stride-2
deconvolutions (256 channels, k4) and a 1x1 conv: heatmaps at stride 4.
"""

from __future__ import annotations

import torch
from torch import nn

from .heads import PoseModel, check_divisible, init_conv_normal, make_head


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


RESNETS = {18: (BasicBlock, (2, 2, 2, 2)), 34: (BasicBlock, (3, 4, 6, 3)),
           50: (Bottleneck, (3, 4, 6, 3)), 101: (Bottleneck, (3, 4, 23, 3))}


class ResNet(nn.Module):
    """ResNet-18/34/50/101 without the classifier; ``forward`` returns the stride-32 features."""

    def __init__(self, depth: int):
        super().__init__()
        if depth not in RESNETS:
            raise ValueError(f"ResNet depth must be one of {sorted(RESNETS)}, got {depth}")
        block, layers = RESNETS[depth]
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or cin != planes * block.expansion:
                down = nn.Sequential(nn.Conv2d(cin, planes * block.expansion, 1, stride, bias=False),
                                     nn.BatchNorm2d(planes * block.expansion))
            blocks = [block(cin, planes, stride, down)]
            cin = planes * block.expansion
            blocks += [block(cin, planes) for _ in range(1, n)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.out_channels = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class SimpleBaselinePose(PoseModel):
    """ResNet + three deconvolutions (heatmap head), or ResNet + SimCC head on the stride-32 features (as MMPose's
    SimCC ResNet configs, which drop the deconvolutions)."""

    def __init__(self, depth: int = 50, num_keypoints: int = 17, input_size: tuple[int, int] = (192, 256),
                 head: str = "heatmap", simcc_split_ratio: float | None = None, deconv_channels: int = 256):
        super().__init__(num_keypoints, input_size, head, simcc_split_ratio)
        check_divisible(self.input_size, 32, f"SimpleBaseline (ResNet-{depth}, stride 32)")
        if deconv_channels < 1:
            raise ValueError(f"deconv_channels must be positive, got {deconv_channels}")
        self.backbone = ResNet(depth)
        deconvs = (deconv_channels,) * 3 if head == "heatmap" else ()
        self.keypoint_head = make_head(self, self.backbone.out_channels, 32, deconvs)
        init_conv_normal(self.keypoint_head)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)
