"""How a pruned model is saved and rebuilt: the architecture's ``build_model`` arguments plus the channel counts of
every layer that pruning changed, so a checkpoint rebuilds its own model with no pickled classes."""

from __future__ import annotations

import torch
from torch import nn

_CONV_ATTRS = ("in_channels", "out_channels", "groups")
_NORM_ATTRS = ("num_features",)
_LINEAR_ATTRS = ("in_features", "out_features")


def _attrs(module: nn.Module) -> tuple[str, ...]:
    if isinstance(module, nn.modules.conv._ConvNd):
        return _CONV_ATTRS
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return _NORM_ATTRS
    if isinstance(module, nn.Linear):
        return _LINEAR_ATTRS
    return ()


def channel_record(model: nn.Module, reference: nn.Module) -> dict[str, dict[str, int]]:
    """The layers of ``model`` whose channel attributes differ from the unpruned ``reference`` (same names)."""
    ref = dict(reference.named_modules())
    record = {}
    for name, module in model.named_modules():
        attrs = _attrs(module)
        if attrs and name in ref:
            values = {a: int(getattr(module, a)) for a in attrs}
            if values != {a: int(getattr(ref[name], a)) for a in attrs}:
                record[name] = values
    return record


def apply_channel_record(model: nn.Module, record: dict[str, dict[str, int]], state_dict: dict) -> nn.Module:
    """Reshape the recorded layers of a freshly built ``model`` to the pruned sizes (parameters and buffers take
    the shapes of ``state_dict``, which is loaded afterwards by the caller)."""
    modules = dict(model.named_modules())
    for name, values in record.items():
        if name not in modules:
            raise KeyError(f"pruned layer '{name}' is not in {type(model).__name__}")
        module = modules[name]
        for attr, value in values.items():
            setattr(module, attr, int(value))
        for pname, param in list(module.named_parameters(recurse=False)):
            key = f"{name}.{pname}"
            if key in state_dict:
                fresh = nn.Parameter(torch.empty_like(state_dict[key]), requires_grad=param.requires_grad)
                setattr(module, pname, fresh)
        for bname, buf in list(module.named_buffers(recurse=False)):
            key = f"{name}.{bname}"
            if key in state_dict and buf is not None:
                module.register_buffer(bname, torch.empty_like(state_dict[key]))
    return model
