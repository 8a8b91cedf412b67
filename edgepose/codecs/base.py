"""The ``Codec`` protocol and ``BaseCodec``, the one ``__post_init__`` validation every codec dataclass shares.

Shapes: N persons, K keypoints, heatmaps (N, K, h, w), SimCC vectors (N, K, L). Coordinates follow
``edgepose.affine``: integer values at pixel centres.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from edgepose.codecs.utils import sigma_pair
from edgepose.errors import CardError


@runtime_checkable
class Codec(Protocol):
    """Turns keypoints into training targets and model outputs back into keypoints (model-input pixels)."""

    name: ClassVar[str]
    output_keys: ClassVar[tuple[str, ...]]

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(N, K, 2) keypoints and (N, K) visibility -> (targets by output key, (N, K) float32 weights)."""
        ...

    def decode(self, outputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Model outputs -> ((N, K, 2) float32 keypoints in input pixels, (N, K) float32 scores)."""
        ...

    def flip_back(self, outputs: Mapping[str, np.ndarray], flip_index: np.ndarray) -> dict[str, np.ndarray]:
        """Outputs for the horizontally flipped crop -> outputs aligned with the unflipped crop."""
        ...


class BaseCodec:
    """Mixin for the frozen codec dataclasses: normalises and validates the fields they all share.

    A subclass (a frozen dataclass with fields input_size, sigma, refine and blur_kernel_size) sets ``name`` and
    ``refine_modes`` and defines ``_coerce_target`` / ``_check_target`` for the fields that size its outputs.
    """

    name: ClassVar[str] = ""
    refine_modes: ClassVar[tuple[str, ...]] = ("none",)

    input_size: tuple[int, int]
    sigma: tuple[float, float]
    refine: str
    blur_kernel_size: int

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "input_size", (int(self.input_size[0]), int(self.input_size[1])))
        self._coerce_target()
        set_(self, "sigma", sigma_pair(self.sigma))
        self._check_target()
        if self.refine not in self.refine_modes:
            raise CardError(f"codec '{self.name}' decode must be one of {list(self.refine_modes)}, got {self.refine!r}")
        if self.blur_kernel_size < 1 or self.blur_kernel_size % 2 == 0:
            raise CardError(f"blur_kernel_size must be a positive odd integer, got {self.blur_kernel_size}")

    def _coerce_target(self) -> None:
        """Convert the codec's own output-size fields to their canonical types (frozen: use object.__setattr__)."""

    def _check_target(self) -> None:
        """Raise CardError when the codec's own output-size fields are invalid."""
