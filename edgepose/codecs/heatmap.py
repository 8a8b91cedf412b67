"""``HeatmapCodec``: the base of the 2-D heatmap codecs (MSRA, UDP)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgepose.codecs.base import BaseCodec
from edgepose.codecs.utils import argmax_2d, check_flip_index, flip_shift, mirror, read_output, sigma_pair
from edgepose.errors import CardError


@dataclass(frozen=True)
class HeatmapCodec(BaseCodec):
    """Shared part of the 2-D heatmap codecs: fields, size checks, decode skeleton and flip_back.

    A subclass sets ``name`` and ``refine_modes`` and defines ``encode``, ``heatmap_map`` (the affine map of the
    input axis onto the heatmap axis) and ``_refine`` (sub-pixel offsets of the integer argmax).
    """

    output_keys: ClassVar[tuple[str, ...]] = ("heatmaps",)

    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]
    sigma: tuple[float, float] = (2.0, 2.0)
    refine: str = "none"
    blur_kernel_size: int = 11

    def _coerce_target(self) -> None:
        object.__setattr__(self, "heatmap_size", (int(self.heatmap_size[0]), int(self.heatmap_size[1])))

    def _check_target(self) -> None:
        if min(self.input_size) < 2 or min(self.heatmap_size) < 2:
            sizes = f"{list(self.input_size)}, {list(self.heatmap_size)}"
            raise CardError(f"codec '{self.name}' needs input and heatmap sizes of at least 2x2, got {sizes}")

    @classmethod
    def from_card(cls, card: Any) -> HeatmapCodec:
        """Build the codec from a ``ModelCard`` (input_size, heatmap_size, sigma, decode, blur_kernel_size)."""
        if card.codec != cls.name or card.heatmap_size is None:
            raise CardError(f"{cls.__name__} needs a card with codec '{cls.name}' and a heatmap_size")
        return cls(card.input_size, card.heatmap_size, sigma_pair(card.sigma), card.decode, card.blur_kernel_size)

    def heatmap_map(self) -> tuple[np.ndarray, np.ndarray]:
        """(scale, offset), each (2,) for (x, y): heatmap coordinate = scale * input coordinate + offset."""
        raise NotImplementedError

    def _refine(self, maps: np.ndarray, x: np.ndarray, y: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, ...]:
        raise NotImplementedError

    def _read(self, outputs: Mapping[str, np.ndarray]) -> np.ndarray:
        w, h = self.heatmap_size
        return read_output(outputs, "heatmaps", (h, w), f"heatmap_size [{w}, {h}]")

    def decode(self, outputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """{"heatmaps": (N, K, h, w)} -> ((N, K, 2) keypoints in input pixels, (N, K) heatmap maxima)."""
        maps = self._read(outputs)
        n, k, h, w = maps.shape
        flat = maps.reshape(n * k, h, w)
        x, y, vals = argmax_2d(flat)
        xy = np.stack([x, y], axis=1).astype(np.float64)
        if self.refine != "none" and len(flat):
            ox, oy = self._refine(flat, x, y, vals)
            xy += np.stack([ox, oy], axis=1)
        scale, offset = self.heatmap_map()
        keypoints = (xy - offset) / scale
        return keypoints.reshape(n, k, 2).astype(np.float32), vals.reshape(n, k).astype(np.float32)

    def flip_back(self, outputs: Mapping[str, np.ndarray], flip_index: np.ndarray) -> dict[str, np.ndarray]:
        """Mirror x, permute keypoints by ``flip_index`` and shift by this codec's exact sub-pixel amount."""
        maps = self._read(outputs)
        index = check_flip_index(flip_index, maps.shape[1])
        scale, offset = self.heatmap_map()
        shift = flip_shift(self.heatmap_size[0], scale[0], offset[0], self.input_size[0])
        return {"heatmaps": mirror(maps, index, shift)}
