"""Seeded weights in MMPose's key layout, regenerated identically by the fixture recorder (under MMPose) and the tests.

``seeded_state_dict(keys, shapes)`` depends on torch alone (no MMPose, no project code), so that
``tests/helpers/record_mmpose_reference.py`` and ``tests/compress/test_mmpose_architectures.py`` build the very same
tensors. Each tensor comes from its own generator, ``manual_seed(SEED + i)`` with ``i`` its index among the sorted
keys, so a key's values do not depend on any other key. Magnitudes are those of a trained network, so the outputs
are of order one and a comparison at 1e-4 means something:

- conv / linear weights (2 or more dimensions): N(0, 1 / fan_in), fan_in = the product of all but the first dim;
- ``gamma`` / ``beta`` (the GAU's query/key scales and offsets): U(0, 0.25), so that its attention term is of the
  order of its residual (0.3 to 1 times it) rather than swamping it;
- ``running_mean``: N(0, 0.1); ``running_var``: U(2, 6), positive and large enough that HRNet's 8 fused modules of
  residual blocks stay of order one (U(0.5, 1.5) gives heatmaps of 1e4); ``num_batches_tracked``: 0;
- ``bias``: N(0, 0.1); other 1-D parameters (BN weights, ScaleNorm ``g``, ``res_scale.scale``): U(0.5, 1.5).

The input is ``seeded_input(shape)``: N(0, 1), like a normalised image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

SEED = 1000
INPUT_SEED = 7


def seeded_tensor(key: str, shape: Sequence[int], index: int) -> torch.Tensor:
    """The tensor for state-dict ``key`` of ``shape``, the ``index``-th key in sorted order."""
    shape = tuple(int(s) for s in shape)
    leaf = key.rsplit(".", 1)[-1]
    g = torch.Generator().manual_seed(SEED + index)
    if leaf == "num_batches_tracked":
        return torch.zeros(shape, dtype=torch.int64)
    if leaf == "running_mean":
        return torch.randn(shape, generator=g) * 0.1
    if leaf == "running_var":
        return torch.rand(shape, generator=g) * 4 + 2
    if leaf in ("gamma", "beta"):
        return torch.rand(shape, generator=g) * 0.25
    if leaf == "bias":
        return torch.randn(shape, generator=g) * 0.1
    if len(shape) >= 2:
        return torch.randn(shape, generator=g) / math.sqrt(math.prod(shape[1:]))
    return torch.rand(shape, generator=g) + 0.5


def seeded_state_dict(keys: Sequence[str], shapes: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
    """``{key: seeded_tensor(key, shape, index in sorted(keys))}`` in the given key order."""
    order = {key: i for i, key in enumerate(sorted(keys))}
    return {key: seeded_tensor(key, shape, order[key]) for key, shape in zip(keys, shapes, strict=True)}


def seeded_input(shape: Sequence[int]) -> torch.Tensor:
    """The fixed float32 input batch (N, 3, H, W)."""
    return torch.randn(tuple(int(s) for s in shape), generator=torch.Generator().manual_seed(INPUT_SEED))


def checksum(state: dict[str, torch.Tensor]) -> float:
    """Sum of |values| of the float tensors (float64): detects a generator that no longer gives the same numbers."""
    return float(sum(v.double().abs().sum() for v in state.values() if v.is_floating_point()))
