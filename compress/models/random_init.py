"""Random weights with real magnitudes, for tests and speed benchmarks of untrained models.

MMPose's initialisation (conv std 0.001) gives heatmaps of about 1e-20, where any comparison passes and every
argmax ties. Here: He-normal convolutions and linears, random BN affine, BN statistics gathered from two random
batches (so activations are of order 1, as in a trained network), and optionally the head's bias raised so the
maps are positive around their peaks (DARK takes the log of the blurred map there).
"""

from __future__ import annotations

import torch


def realistic_random_weights(model: torch.nn.Module, seed: int = 0, head_bias: float = 0.0) -> torch.nn.Module:
    """Re-initialise ``model`` (a pose model with ``input_size``) in place, deterministically; eval mode."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
            m.weight.data = torch.randn(m.weight.shape, generator=g) * (2.0 / m.weight[0].numel()) ** 0.5
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data = torch.rand(m.num_features, generator=g) + 0.5
            m.bias.data = torch.randn(m.num_features, generator=g) * 0.1
            m.momentum = None  # cumulative average: the statistics of the passes below
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(4, 3, *reversed(model.input_size), generator=g))
        if head_bias:  # the last conv is the head's output
            [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1].bias += head_bias
    return model.eval()
