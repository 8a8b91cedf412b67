"""RTMPose (Jiang et al., "RTMPose: Real-Time Multi-Person Pose Estimation based on MMPose", 2023): CSPNeXt +
``RTMCCHead`` on the stride-32 features, SimCC outputs.

The variants are MMPose's ``rtmpose-{t,s,m}_8xb256-420e_coco-256x192`` configs (MMPose's table: 3.34M, 5.47M and
13.59M parameters). ``head="heatmap"`` gives MMPose's ``cspnext-*_udp`` heatmap model instead: the same backbone with
``HeatmapHead``'s three 256-channel deconvolutions and a 1x1 conv.
"""

from __future__ import annotations

import torch

from .cspnext import CSPNeXt
from .heads import PoseModel, check_divisible, init_conv_normal, make_head
from .rtmcc_head import RTMCCHead

# (deepen_factor, widen_factor) of CSPNeXt in each RTMPose config.
SPECS = {"rtmpose_t": (0.167, 0.375), "rtmpose_s": (0.33, 0.5), "rtmpose_m": (0.67, 0.75)}


class RTMPosePose(PoseModel):
    """CSPNeXt backbone + RTMCC (SimCC, default) or heatmap head."""

    def __init__(self, variant: str, num_keypoints: int = 17, input_size: tuple[int, int] = (192, 256),
                 head: str = "simcc", simcc_split_ratio: float | None = None, spp: bool = True):
        super().__init__(num_keypoints, input_size, head, simcc_split_ratio)
        if variant not in SPECS:
            raise ValueError(f"unknown RTMPose variant {variant!r}; valid: {', '.join(SPECS)}")
        check_divisible(self.input_size, 32, f"RTMPose ({variant}, stride 32)")
        self.backbone = CSPNeXt(*SPECS[variant], spp=spp)
        channels = self.backbone.out_channels
        if head == "simcc":
            w, h = self.input_size
            self.keypoint_head = RTMCCHead(channels, self.num_keypoints, self.input_size, (w // 32, h // 32),
                                           self.simcc_split_ratio)
        else:
            self.keypoint_head = make_head(self, channels, 32, (256, 256, 256))
            init_conv_normal(self.keypoint_head)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)
