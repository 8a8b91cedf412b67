"""Feature-level distillation: a student layer, through a trainable 1x1-conv adapter, imitates a teacher layer.

Each pair in the config names one module of the student and one of the teacher (``dict(model.named_modules())``
names, e.g. ``backbone.stages.2`` / ``backbone.layer3``). Their outputs are captured with forward hooks; the
adapter maps the student's channels to the teacher's, the result is resized (bilinear) to the teacher's spatial
size, and the loss is ``weight * MSE``. Adapters train with the student and are not part of the exported model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from edgepose.errors import ConfigError


@dataclass
class FeaturePair:
    """One student layer taught by one teacher layer."""

    student: str
    teacher: str
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.weight < 0:
            raise ConfigError(f"distill.features weight must be >= 0, got {self.weight}")


class FeatureTaps:
    """Forward hooks that keep the latest output of the named modules of ``model``."""

    def __init__(self, model: torch.nn.Module, names: list[str], role: str) -> None:
        modules = dict(model.named_modules())
        unknown = [n for n in names if n not in modules]
        if unknown:
            near = [n for n in modules if n and n.count(".") <= 2][:12]
            raise ConfigError(f"distill.features: the {role} has no module named {unknown}; some of its names: {near}")
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles = [modules[n].register_forward_hook(self._keeper(n)) for n in names]

    def _keeper(self, name: str):
        def hook(_module, _inputs, output):
            tensor = output[0] if isinstance(output, (list, tuple)) else output
            if not isinstance(tensor, torch.Tensor) or tensor.dim() != 4:
                raise ConfigError(f"distill.features: module '{name}' does not output a (N, C, H, W) tensor")
            self.outputs[name] = tensor
        return hook

    def remove(self) -> None:
        """Detach the hooks."""
        for handle in self._handles:
            handle.remove()


def probe_channels(model: torch.nn.Module, names: list[str], input_size: tuple[int, int]) -> list[int]:
    """Channels of each named module's output, from one forward pass on a zero image (w, h = input_size)."""
    taps = FeatureTaps(model, names, "model")
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            device = next(model.parameters()).device
            model(torch.zeros(1, 3, input_size[1], input_size[0], device=device))
        return [int(taps.outputs[n].shape[1]) for n in names]
    finally:
        taps.remove()
        model.train(was_training)


class FeatureAdapters(torch.nn.Module):
    """One 1x1 conv (student channels -> teacher channels) per feature pair."""

    def __init__(self, student_channels: list[int], teacher_channels: list[int]) -> None:
        super().__init__()
        self.convs = torch.nn.ModuleList(torch.nn.Conv2d(cs, ct, 1) for cs, ct in
                                         zip(student_channels, teacher_channels, strict=True))

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """Adapted student features, in pair order."""
        return [conv(f) for conv, f in zip(self.convs, features, strict=True)]


def feature_loss(adapted: list[torch.Tensor], teacher: list[torch.Tensor], pairs: list[FeaturePair]) -> torch.Tensor:
    """Sum over pairs of ``weight * MSE(resize(adapted, teacher size), teacher)``."""
    total = adapted[0].new_zeros(())
    for a, t, pair in zip(adapted, teacher, pairs, strict=True):
        if a.shape[-2:] != t.shape[-2:]:
            a = F.interpolate(a, size=t.shape[-2:], mode="bilinear", align_corners=False)
        total = total + pair.weight * F.mse_loss(a.float(), t.float().detach())
    return total
