"""Quantization-aware training: fake INT8 quantization where TensorRT and ONNX Runtime will quantize, exported as
explicit Q/DQ ONNX.

``prepare_qat(model)`` first folds every BatchNorm into the convolution that feeds it (found by tracing one forward
pass; the folded model is checked to compute the same function), then wraps every Conv2d / ConvTranspose2d so
that its input is fake-quantized per tensor and its weight per output channel, both symmetric INT8 (zero point 0),
as TensorRT's explicit-quantization mode expects: Q/DQ on the inputs and weights of convolutions, which it fuses
into INT8 kernels. The activation range is an exponential moving average of the absolute maximum seen in
training (frozen in eval mode); weight ranges follow the weights. Gradients pass straight through
(``torch.fake_quantize_*``). ``torch.onnx.export`` writes these ops as QuantizeLinear / DequantizeLinear pairs.
Scales are amax / 127 and the integer range is ONNX's [-128, 127] (ONNX has no narrow range; with a symmetric
scale, -128 is reached only by values beyond -amax).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

QMAX = 127


class FakeQuantConv(nn.Module):
    """A convolution whose input and weight are fake-quantized to symmetric INT8."""

    def __init__(self, conv: nn.Conv2d | nn.ConvTranspose2d, momentum: float = 0.1) -> None:
        super().__init__()
        self.conv = conv
        self.momentum = momentum
        self.register_buffer("input_amax", torch.zeros(()))

    @property
    def weight_axis(self) -> int:
        """The output-channel axis of the weight (1 for transposed convolutions)."""
        return 1 if isinstance(self.conv, nn.ConvTranspose2d) else 0

    def _quant_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            amax = x.detach().abs().max()
            if self.input_amax.item() == 0:
                self.input_amax.copy_(amax)
            else:
                self.input_amax.mul_(1 - self.momentum).add_(self.momentum * amax)
        scale = (self.input_amax / QMAX).clamp_min(1e-8)
        return torch.fake_quantize_per_tensor_affine(x, scale, 0, -QMAX - 1, QMAX)

    def _quant_weight(self) -> torch.Tensor:
        w = self.conv.weight
        axis = self.weight_axis
        dims = [d for d in range(w.dim()) if d != axis]
        scale = (w.detach().abs().amax(dim=dims) / QMAX).clamp_min(1e-8)
        zero = torch.zeros_like(scale, dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(w, scale, zero, axis, -QMAX - 1, QMAX)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, w, c = self._quant_input(x), self._quant_weight(), self.conv
        if isinstance(c, nn.ConvTranspose2d):
            return F.conv_transpose2d(x, w, c.bias, c.stride, c.padding, c.output_padding, c.groups, c.dilation)
        return F.conv2d(x, w, c.bias, c.stride, c.padding, c.dilation, c.groups)


def conv_bn_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(conv name, bn name) where the BN reads exactly the conv's output tensor (one traced forward pass)."""
    names = {m: n for n, m in model.named_modules()}
    produced: dict[int, str] = {}
    pairs: list[tuple[str, str]] = []
    hooks = []

    def after_conv(module, _inputs, output):
        produced[id(output)] = names[module]

    def before_bn(module, inputs):
        source = produced.get(id(inputs[0]))
        if source is not None:
            pairs.append((source, names[module]))

    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            hooks.append(module.register_forward_hook(after_conv))
        elif isinstance(module, nn.BatchNorm2d):
            hooks.append(module.register_forward_pre_hook(before_bn))
    was_training = model.training
    try:
        model.eval()
        w, h = model.input_size
        with torch.no_grad():
            model(torch.zeros(1, 3, h, w))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return pairs


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def fold_bn(conv: nn.Conv2d | nn.ConvTranspose2d, bn: nn.BatchNorm2d) -> None:
    """Fold ``bn`` (eval statistics) into ``conv``'s weight and bias, in place."""
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    shape = [1] * conv.weight.dim()
    axis = 1 if isinstance(conv, nn.ConvTranspose2d) else 0
    if isinstance(conv, nn.ConvTranspose2d) and conv.groups != 1:
        raise NotImplementedError("folding BN into a grouped transposed convolution")
    shape[axis] = -1
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight = nn.Parameter(conv.weight.detach() * scale.reshape(shape))
    conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias.detach())


def prepare_qat(model: nn.Module, check: bool = True) -> nn.Module:
    """Fold BNs and insert fake quantization, in place; ``model.qat`` is set so checkpoints rebuild it."""
    model.eval()
    reference = None
    if check:
        w, h = model.input_size
        probe = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            reference = {k: v.clone() for k, v in model(probe).items()}
    for conv_name, bn_name in conv_bn_pairs(model):
        fold_bn(model.get_submodule(conv_name), model.get_submodule(bn_name))
        _set(model, bn_name, nn.Identity())
    if reference is not None:
        with torch.no_grad():
            folded = model(probe)
        for k, v in reference.items():
            err = (folded[k] - v).abs().max().item()
            if err > 1e-4 * max(1.0, v.abs().max().item()):
                raise RuntimeError(f"BN folding changed output '{k}' by {err}: a BN input is used elsewhere")
    convs = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    for name in convs:
        _set(model, name, FakeQuantConv(model.get_submodule(name)))
    model.qat = True
    return model


def calibrate(model: nn.Module, batches, limit: int = 8) -> None:
    """Set the activation ranges from a few batches (training mode, no gradient) before fine-tuning."""
    was_training = model.training
    model.train()
    with torch.no_grad():
        for i, batch in enumerate(batches):
            if i >= limit:
                break
            model(batch["image"] if isinstance(batch, dict) else batch)
    model.train(was_training)
