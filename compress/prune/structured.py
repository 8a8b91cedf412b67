"""Structured channel pruning to a FLOPs target: the model gets narrower, and stays an ordinary model.

    report = prune_model(model, PruneSettings(target_flops_ratio=0.3, importance="l2"), batches=...)

Two engines behind one call:
- Torch-Pruning's dependency graph (``MetaPruner``) for networks it can trace (ResNet SimpleBaselines, hourglass):
  residual adds, concatenations, grouped and depthwise convolutions stay consistent by construction;
- Lite-HRNet's own channel groups (``compress.prune.lite_hrnet_rules``, which says why), pruned with Torch-Pruning's
  layer functions.
The keypoint head's output layers are always protected (the keypoints are the contract), plus any ``protect`` names.
Parts the dependency graph cannot follow are left whole, with the reason in the report (``left_unpruned``): RTMPose's
gated attention unit (``UNPRUNABLE``). HRNet's multi-branch fuse layers are traced like any add and are pruned.
Importance: ``l1`` / ``l2`` weight magnitude, ``bn_scale`` (|gamma|) or ``taylor`` (|w * dL/dw|, from ``batches``).
The FLOPs target is met by searching the pruning ratio (uniform per group, or global ranking); ``steps`` > 1 splits
it into iterative steps (the caller fine-tunes between them: ``edgepose prune``). The pruned model records its
channel counts (``model.pruned_channels``) so checkpoints rebuild it (``compress.prune.pruned_shapes``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from edgepose.errors import ConfigError

IMPORTANCES = ("l1", "l2", "bn_scale", "taylor")

# module class name -> why Torch-Pruning must leave every channel of it (and of its sub-layers) alone
UNPRUNABLE = {
    "GatedAttentionUnit": (
        "RTMCC head's gated attention unit: its uv projection is split into u, v and the attention base, and the base "
        "is scaled by the gamma/beta parameters Torch-Pruning's dependency graph does not track, so pruning it "
        "breaks the split (index errors or mismatched shapes); left whole (a small share of the FLOPs)"),
}


@dataclass
class PruneSettings:
    """What to prune and how far."""

    target_flops_ratio: float | None = 0.3  # fraction of the FLOPs to remove (the ratio is searched for)
    pruning_ratio: float | None = None  # or: this fraction of every layer's channels, no search
    importance: str = "l2"
    global_pruning: bool = False  # rank channels across layers (True) or remove the same share per layer
    per_layer_ratio: dict[str, float] = field(default_factory=dict)  # layer (group) name prefix -> its own ratio
    protect: list[str] = field(default_factory=list)  # layer names whose output channels are never removed
    steps: int = 1  # iterative pruning: the target reached in this many prune + fine-tune steps

    def __post_init__(self) -> None:
        if (self.target_flops_ratio is None) == (self.pruning_ratio is None):
            raise ConfigError("set exactly one of target_flops_ratio (a FLOPs target) and pruning_ratio "
                              "(a share of every layer's channels)")
        for name in ("target_flops_ratio", "pruning_ratio"):
            value = getattr(self, name)
            if value is not None and not 0 < value < 1:
                raise ConfigError(f"{name} must be in (0, 1), got {value}")
        if self.importance not in IMPORTANCES:
            raise ConfigError(f"importance must be one of {IMPORTANCES}, got {self.importance!r}")
        if self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")
        bad = {k: v for k, v in self.per_layer_ratio.items() if not 0 <= v < 1}
        if bad:
            raise ConfigError(f"per_layer_ratio values must be in [0, 1): {bad}")


@dataclass
class PruneReport:
    """What one pruning step did."""

    engine: str
    ratio: float  # the per-group ratio (or global share) the search settled on
    flops_before: float
    flops_after: float
    params_before: int
    params_after: int
    pruned_layers: int
    left_unpruned: dict[str, str] = field(default_factory=dict)  # layer name -> why it was not pruned

    @property
    def flops_reduction(self) -> float:
        """Fraction of FLOPs removed."""
        return 1 - self.flops_after / self.flops_before

    def to_dict(self) -> dict:
        """JSON-ready fields."""
        return {**vars(self), "flops_reduction": self.flops_reduction}


def _is_lite_hrnet(model: nn.Module) -> bool:
    from compress.models.lite_hrnet import LiteHRNetPose

    return isinstance(model, LiteHRNetPose)


def _output_layers(model: nn.Module) -> list[str]:
    """Names of the head layers that produce the model's outputs (never pruned on their output side)."""
    return [n for n, _ in model.keypoint_head.named_children() if n in ("final_layer", "cls_x", "cls_y", "mlp")]


def accumulate_gradients(model: nn.Module, batches: Iterable[dict], loss_fn: Callable) -> None:
    """Fill ``.grad`` from a few training batches (Taylor importance needs them)."""
    model.zero_grad(set_to_none=True)
    was_training = model.training
    model.train()
    seen = 0
    for batch in batches:
        loss_fn(model(batch["image"]), batch["targets"], batch["weights"]).backward()
        seen += 1
    model.train(was_training)
    if not seen:
        raise ConfigError("Taylor importance needs at least one training batch")


def left_unpruned(model: nn.Module) -> dict[str, str]:
    """The layers of ``model`` the graph engine must leave whole (``UNPRUNABLE``), each with its reason."""
    return {name: UNPRUNABLE[type(m).__name__] for name, m in model.named_modules()
            if type(m).__name__ in UNPRUNABLE}


# ---------------------------------------------------------------- Lite-HRNet groups


def _group_scores(group, importance: str) -> torch.Tensor:
    """One score per channel of a Lite-HRNet group (higher = keep)."""
    from compress.prune.lite_hrnet_rules import ChannelGroup

    assert isinstance(group, ChannelGroup)
    channels = list(range(group.size))
    if importance == "bn_scale":
        bns = [m.module for m in group.members if isinstance(m.module, nn.modules.batchnorm._BatchNorm)
               and m.kind == "out" and m.hi is None]
        if bns:
            return bns[0].weight.detach().abs().clone()
    scores = torch.zeros(group.size)
    for member in group.members:
        for tensor, axis, local in group.params_of(member, channels):
            values = tensor.detach()
            if importance == "taylor":
                if tensor.grad is None:
                    raise ConfigError("Taylor importance needs gradients: pass training batches")
                values = (values * tensor.grad).abs()
            values = values.transpose(0, axis) if axis else values
            flat = values[local].reshape(len(local), -1)
            per = flat.abs().sum(1) if importance != "l2" else flat.pow(2).sum(1)
            scores[member.lo:member.lo + len(local)] += per
    return scores.sqrt() if importance == "l2" else scores


def _own_ratio(name: str, per_layer: dict[str, float]) -> float | None:
    """The per-layer ratio whose name is ``name`` or a prefix of it (the longest wins)."""
    hits = [k for k in per_layer if name == k or name.startswith(k + ".")]
    return per_layer[max(hits, key=len)] if hits else None


def _pick(groups, ratio: float, importance: str, global_pruning: bool,
          per_layer: dict[str, float] | None = None) -> list[list[int]]:
    """Channels to remove per group for ``ratio`` (``per_layer``: name prefix -> a fixed ratio)."""
    scores = [_group_scores(g, importance) for g in groups]
    picks: list[list[int]] = []
    if global_pruning:
        normed = [s / s.max().clamp_min(1e-12) for s in scores]
        flat = torch.cat(normed)
        k = int(ratio * flat.numel())
        threshold = flat.sort().values[k - 1].item() if k > 0 else -1.0
    for g, s, idx in zip(groups, scores, range(len(groups)), strict=True):
        own = _own_ratio(g.name, per_layer or {})
        if own is not None:
            n = int(own * g.size)
        else:
            n = int((normed[idx] <= threshold).sum().item()) if global_pruning else int(ratio * g.size)
        n = min(n, g.size - (2 if g.halves else 1))
        if g.halves:  # remove the same number from each half of the chunk
            half = g.size // 2
            n_half = n // 2
            lower = torch.argsort(s[:half])[:n_half].tolist()
            upper = (torch.argsort(s[half:])[:n_half] + half).tolist()
            picks.append(sorted(lower + upper))
        else:
            picks.append(sorted(torch.argsort(s)[:max(n, 0)].tolist()))
    return picks


def _prune_lite_hrnet(model: nn.Module, ratio: float, settings: PruneSettings) -> int:
    from compress.prune.lite_hrnet_rules import lite_hrnet_groups

    groups = [g for g in lite_hrnet_groups(model)
              if not any(g.name == p or g.name.startswith(p + ".") for p in settings.protect)]
    picks = _pick(groups, ratio, settings.importance, settings.global_pruning, settings.per_layer_ratio)
    for g, channels in zip(groups, picks, strict=True):
        if channels:
            g.prune(channels)
    return sum(1 for c in picks if c)


# ---------------------------------------------------------------- Torch-Pruning dependency graph


def _tp_importance(name: str):
    import torch_pruning as tp

    if name == "l1":
        return tp.importance.GroupMagnitudeImportance(p=1)
    if name == "l2":
        return tp.importance.GroupMagnitudeImportance(p=2)
    if name == "bn_scale":
        return tp.importance.BNScaleImportance()
    return tp.importance.GroupTaylorImportance()


def _prune_graph(model: nn.Module, ratio: float, settings: PruneSettings, example: torch.Tensor) -> int:
    import torch_pruning as tp

    modules = dict(model.named_modules())
    protected = [f"keypoint_head.{n}" for n in _output_layers(model)] + list(settings.protect)
    unknown = [p for p in [*protected, *settings.per_layer_ratio] if p not in modules]
    if unknown:
        raise ConfigError(f"no layers named {unknown} in {type(model).__name__}")
    ignored = [modules[p] for p in [*protected, *left_unpruned(model)]]
    pruner = tp.pruner.MetaPruner(
        model, example, importance=_tp_importance(settings.importance), pruning_ratio=ratio,
        pruning_ratio_dict={modules[k]: v for k, v in settings.per_layer_ratio.items()},
        ignored_layers=ignored, global_pruning=settings.global_pruning,
        forward_fn=lambda m, x: next(iter(m(x).values())))
    groups = list(pruner.step(interactive=True))
    for group in groups:
        group.prune()
    return len(groups)


# ---------------------------------------------------------------- the search


def _flops(model: nn.Module, input_size: tuple[int, int]) -> float:
    from compress.models.complexity import count_flops

    return count_flops(model, input_size)


def prune_model(model: nn.Module, settings: PruneSettings, target_flops: float | None = None,
                batches: list[dict] | None = None, loss_fn: Callable | None = None) -> PruneReport:
    """Prune ``model`` in place until its FLOPs are at most ``target_flops`` (default: one step's share of the
    settings' target) and return what it did. ``batches`` + ``loss_fn`` feed Taylor importance."""

    input_size = tuple(model.input_size)
    w, h = input_size
    example = torch.zeros(1, 3, h, w)
    base = _flops(model, input_size)
    lite = _is_lite_hrnet(model)
    engine = "lite_hrnet_groups" if lite else "torch_pruning_graph"
    if lite:
        names = {g.name for g in _lite_groups(model)}
        unknown = [k for k in settings.per_layer_ratio if not any(n == k or n.startswith(k + ".") for n in names)]
        if unknown:
            raise ConfigError(f"per_layer_ratio names {unknown} match no prunable group; groups: {sorted(names)[:8]}")

    def attempt(ratio: float) -> tuple[nn.Module, float, int]:
        trial = copy.deepcopy(model)
        if settings.importance == "taylor":
            if not batches or loss_fn is None:
                raise ConfigError("Taylor importance needs training batches")
            accumulate_gradients(trial, batches, loss_fn)
        trial.eval()
        layers = _prune_lite_hrnet(trial, ratio, settings) if lite else _prune_graph(trial, ratio, settings, example)
        return trial, _flops(trial, input_size), layers

    if settings.pruning_ratio is not None and target_flops is None:  # a fixed share per layer, no search
        ratio = 1 - (1 - settings.pruning_ratio) ** (1 / settings.steps)
        best, hi = attempt(ratio), ratio
        return _finish(model, best, hi, base, engine, lite)
    if target_flops is None:
        target_flops = base * (1 - settings.target_flops_ratio / settings.steps)
    best = attempt(0.95)
    if best[1] > target_flops:
        raise ConfigError(f"{type(model).__name__} cannot lose {1 - target_flops / base:.0%} of its FLOPs by "
                          f"pruning: at most {1 - best[1] / base:.0%} of them are in prunable channels "
                          f"(engine {engine})")
    lo, hi = 0.0, 0.95
    for _ in range(12):  # bisection on the ratio: the smallest one that reaches the target
        mid = (lo + hi) / 2
        trial = attempt(mid)
        if trial[1] <= target_flops:
            hi, best = mid, trial
        else:
            lo = mid
        if hi - lo < 0.005:
            break
    return _finish(model, best, hi, base, engine, lite)


def _lite_groups(model: nn.Module):
    from compress.prune.lite_hrnet_rules import lite_hrnet_groups

    return lite_hrnet_groups(model)


def _finish(model: nn.Module, best: tuple, ratio: float, base: float, engine: str, lite: bool) -> PruneReport:
    """Make the caller's ``model`` the pruned one and report."""
    from compress.models.complexity import count_params

    pruned, flops, layers = best
    whole = {} if lite else left_unpruned(model)
    from compress.models import build_model
    from compress.prune.pruned_shapes import channel_record

    pruned.pruned_channels = channel_record(pruned, build_model(**model.arch))  # against the unpruned design
    params_before = count_params(model)
    model.__dict__.update(pruned.__dict__)  # the caller's object becomes the pruned model
    model.zero_grad(set_to_none=True)
    return PruneReport(engine, ratio, base, flops, params_before, count_params(model), layers, whole)
