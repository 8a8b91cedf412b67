"""Channel groups of Lite-HRNet that can be pruned without breaking it, for ``compress.prune.structured``.

Torch-Pruning's dependency graph cannot trace Lite-HRNet (torch-pruning 1.6: its concat index mapping fails on the
``chunk`` of a channel-shuffled tensor). Its trunk channels cannot be removed anyway: every block splits its input
in halves, passes one half through unchanged and interleaves it with the other (channel shuffle), so removing
channel k forces removing its shuffle partners block after block until the whole branch goes. What can go are the
channels *inside* blocks, each produced by one conv (+BN) and read by one conv, possibly through depthwise layers:

- the stem's first conv (both halves of its chunk shrink equally) and its expand conv,
- the bottlenecks of cross-resolution weighting and of spatial weighting,
- the middle of naive (shuffle) blocks,
- the intermediate steps of multi-step down-sampling paths (fuse and transition layers),
- the last projection of the iterative head, read by the keypoint head's final conv (whose outputs stay).

Each group is pruned with Torch-Pruning's layer functions, so the surgery itself is Torch-Pruning's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch import nn

from compress.models.lite_hrnet import ConditionalChannelWeighting, LiteHRNetPose, ShuffleUnit


@dataclass
class Member:
    """A layer touched by a group, for group channels ``lo <= c < hi`` (local index ``c - lo``)."""

    module: nn.Module
    kind: str  # "out" (conv output / BN), "dw" (depthwise conv: in = out = groups), "in" (conv input)
    lo: int = 0
    hi: int | None = None


@dataclass
class ChannelGroup:
    """Channels produced and consumed together; ``halves``: removal must keep two equal halves."""

    name: str
    size: int
    members: list[Member] = field(default_factory=list)
    halves: bool = False

    def params_of(self, m: Member, channels: list[int]) -> list[tuple[torch.Tensor, int, list[int]]]:
        """(tensor, channel axis, local indices) of member ``m``'s weights that belong to ``channels``."""
        hi = self.size if m.hi is None else m.hi
        local = [c - m.lo for c in channels if m.lo <= c < hi]
        if not local:
            return []
        mod = m.module
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            return [(mod.weight, 0, local), (mod.bias, 0, local)]
        if m.kind == "in":
            return [(mod.weight, 1, local)]
        return [(mod.weight, 0, local)] + ([(mod.bias, 0, local)] if mod.bias is not None else [])

    def prune(self, channels: list[int]) -> None:
        """Remove ``channels`` (group indices) from every member with Torch-Pruning's layer functions."""
        import torch_pruning as tp

        for m in self.members:
            hi = self.size if m.hi is None else m.hi
            local = sorted(c - m.lo for c in channels if m.lo <= c < hi)
            if not local:
                continue
            mod = m.module
            if isinstance(mod, nn.modules.batchnorm._BatchNorm):
                tp.prune_batchnorm_out_channels(mod, local)
            elif m.kind == "dw":
                tp.prune_depthwise_conv_out_channels(mod, local)
            elif m.kind == "out":
                tp.prune_conv_out_channels(mod, local)
            else:
                tp.prune_conv_in_channels(mod, local)
        self.size -= len(channels)


def _conv_bn(module) -> list[nn.Module]:
    """(conv, bn) of a ConvModule; (conv,) when it has no BN."""
    return [module.conv] + ([module.bn] if module.bn is not None else [])


def _chain(name: str, producer: list[nn.Module], depthwise: list[nn.Module], consumer: nn.Module) -> ChannelGroup:
    members = [Member(producer[0], "out")] + [Member(m, "out") for m in producer[1:]]
    members += [Member(depthwise[0], "dw")] + [Member(m, "out") for m in depthwise[1:]] if depthwise else []
    members.append(Member(consumer, "in"))
    return ChannelGroup(name, producer[0].out_channels, members)


def _down_steps(name: str, steps: nn.Sequential) -> list[ChannelGroup]:
    """Multi-step stride-2 paths (dw, bn, pw, bn[, relu]) per step: the channels between two steps."""
    groups = []
    for k in range(len(steps) - 1):
        a, b = steps[k], steps[k + 1]
        groups.append(_chain(f"{name}.{k}", [a[2], a[3]], [b[0], b[1]], b[2]))
    return groups


def lite_hrnet_groups(model: LiteHRNetPose) -> list[ChannelGroup]:
    """Every prunable channel group of a Lite-HRNet pose model (heatmap or SimCC head)."""
    bb = model.backbone
    stem = bb.stem
    groups = []
    conv1 = stem.conv1
    half = conv1.conv.out_channels // 2
    groups.append(ChannelGroup("backbone.stem.conv1", conv1.conv.out_channels, [
        Member(conv1.conv, "out"), Member(conv1.bn, "out"),
        Member(stem.branch1[0].conv, "dw", 0, half), Member(stem.branch1[0].bn, "out", 0, half),
        Member(stem.branch1[1].conv, "in", 0, half),
        Member(stem.expand_conv.conv, "in", half, 2 * half)], halves=True))
    groups.append(_chain("backbone.stem.expand_conv", _conv_bn(stem.expand_conv), _conv_bn(stem.depthwise_conv),
                         stem.linear_conv.conv))
    for name, module in bb.named_modules():
        full = f"backbone.{name}"
        if isinstance(module, ConditionalChannelWeighting):
            crw = module.cross_resolution_weighting
            groups.append(_chain(f"{full}.cross_resolution_weighting", _conv_bn(crw.conv1), [], crw.conv2.conv))
            for i, sw in enumerate(module.spatial_weighting):
                groups.append(_chain(f"{full}.spatial_weighting.{i}", _conv_bn(sw.conv1), [], sw.conv2.conv))
        elif isinstance(module, ShuffleUnit):
            b = module.branch2
            groups.append(_chain(f"{full}.branch2", _conv_bn(b[0]), _conv_bn(b[1]), b[2].conv))
        elif re.fullmatch(r"transition\d+", name):
            for sub_name, sub in module.named_children():
                if isinstance(sub[0], nn.Sequential) and len(sub) > 1:  # a new branch made in several steps
                    groups += _down_steps(f"{full}.{sub_name}", sub)
        elif name.endswith("fuse_layers"):
            for i, row in enumerate(module):
                for j, path in enumerate(row):
                    if path is not None and j < i and len(path) > 1:
                        groups += _down_steps(f"{full}.{i}.{j}", path)
    last = bb.head_layer.projects[-1].pointwise_conv
    groups.append(_chain("backbone.head_layer.projects.last", _conv_bn(last), [], model.keypoint_head.final_layer))
    return groups
