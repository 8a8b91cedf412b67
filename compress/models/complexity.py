"""Parameter and FLOP counts in the convention of the Lite-HRNet paper's table: one multiply-accumulate = one FLOP.

``count_flops`` returns GFLOPs of one image's forward pass where, as in the Lite-HRNet / HRNet / SimpleBaseline papers
and mmcv's ``get_flops``, a multiply-accumulate (MAC) counts as one FLOP. What is counted:

- convolutions (plain, depthwise, grouped, transposed) and linear layers / matmuls: their MACs, taken from
  ``torch.utils.flop_counter.FlopCounterMode`` (which reports 2 FLOPs per MAC, halved here). A grouped or depthwise
  convolution costs ``k*k*(Cin/groups)*Cout`` per output pixel. This includes the 1x1 convolutions of Lite-HRNet's
  cross-resolution and spatial weighting;
- element-wise tensor-by-tensor products (``aten.mul``): one per output element. These are the re-weighting
  products of Lite-HRNet's conditional channel weighting (features times broadcast weights);
- batch/group/instance/layer norms: one per element (at inference a norm is a per-channel scale and shift, one
  multiply-add), and conv biases: one add per output element.

Not counted: activations (ReLU, sigmoid), pooling, resizing, additions, concatenation and channel shuffle.

Measured against the paper (256x192): Lite-HRNet-18 0.208 G (paper 0.2052 G), Lite-HRNet-30 0.325 G (0.3192 G).
Convolutions alone give 0.199 / 0.309 G; counting like mmcv ``get_flops`` (norms twice per element, plus ReLU,
pooling and ``nn.Upsample`` elements) gives 0.219 / 0.341 G, 7 % above the paper. (The official repo measured with
torchstat, ``tools/summary_network.py``. Its forward also runs each downsampling of the fused branch 0 twice, 44 M
MACs more for Lite-HRNet-18, see ``LiteHRModule.forward``; we run it once, and the paper's figure cannot include
the repeat.)
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm, nn.LayerNorm)


def count_params(model: nn.Module) -> int:
    """Number of parameters (each shared tensor once), buffers such as BN running statistics excluded."""
    return sum(p.numel() for p in model.parameters())


def _module_flops(module: nn.Module, inputs: tuple, output) -> int:
    if isinstance(module, nn.modules.conv._ConvNd):
        return output.numel() if module.bias is not None else 0
    if isinstance(module, _NORMS):
        return inputs[0].numel()
    return 0


def _mul_flops(a, b, *args, out_shape=None, **kwargs) -> int:
    """Element-wise tensor products: one per output element (doubled, as FlopCounterMode reports 2 per MAC)."""
    both_tensors = isinstance(a, torch.Size) and isinstance(b, torch.Size)
    return 2 * math.prod(out_shape) if both_tensors and out_shape is not None else 0


def count_flops(model: nn.Module, input_size: tuple[int, int] | None = None) -> float:
    """GFLOPs (multiply-accumulates, see the module docstring) of one (1,3,h,w) forward pass.

    ``input_size`` is (w, h); by default the model's own ``input_size`` (192x256 for the zoo's defaults), falling
    back to (192, 256) for modules without one. The model runs once in eval mode under ``torch.no_grad``; its
    training mode is restored afterwards.
    """
    if input_size is None:
        input_size = getattr(model, "input_size", (192, 256))
    w, h = input_size
    param = next(model.parameters(), None)
    x = torch.zeros(1, 3, h, w, device=param.device if param is not None else "cpu")
    extra = [0]

    def hook(module, inputs, output):
        extra[0] += _module_flops(module, inputs, output)

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    was_training = model.training
    model.eval()
    try:
        counter = FlopCounterMode(display=False, custom_mapping={torch.ops.aten.mul: _mul_flops})
        with torch.no_grad(), counter:
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    macs = counter.get_total_flops() / 2
    return (macs + extra[0]) / 1e9


def complexity_table(models: dict[str, nn.Module]) -> str:
    """A small text table of name, parameters (M) and GFLOPs at each model's own input size."""
    rows = [f"{'model':28s} {'params (M)':>10s} {'GFLOPs':>8s}"]
    rows += [f"{name:28s} {count_params(m) / 1e6:10.3f} {count_flops(m):8.3f}" for name, m in models.items()]
    return "\n".join(rows)
