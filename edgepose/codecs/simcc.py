"""SimCC (Li et al., ECCV 2022; RTMPose): one 1-D classification vector per axis.

Bin coordinate: ``x_s = x_in * r`` with ``r = simcc_split_ratio`` over ``round(W * r)`` bins (likewise y).
Decode: argmax bin / r, optionally refined by 1-D DARK; score = min(max_x, max_y) as MMPose ``get_simcc_maximum``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from edgepose.codecs.base import BaseCodec
from edgepose.codecs.refine import refine_dark_1d
from edgepose.codecs.utils import (
    check_flip_index,
    check_keypoints,
    flip_shift,
    gaussian_profiles,
    mirror,
    read_output,
    sigma_pair,
)
from edgepose.errors import CardError, OutputError


@dataclass(frozen=True)
class SimCC(BaseCodec):
    """Gaussian SimCC labels (MMPose ``SimCCLabel``, smoothing 'gaussian', normalize=False) centred at x * r."""

    name: ClassVar[str] = "simcc"
    output_keys: ClassVar[tuple[str, ...]] = ("simcc_x", "simcc_y")
    refine_modes: ClassVar[tuple[str, ...]] = ("none", "dark")

    input_size: tuple[int, int]
    split_ratio: float = 2.0
    sigma: tuple[float, float] = (6.0, 6.0)
    refine: str = "none"
    blur_kernel_size: int = 11

    def _coerce_target(self) -> None:
        object.__setattr__(self, "split_ratio", float(self.split_ratio))

    def _check_target(self) -> None:
        if self.split_ratio <= 0 or min(self.input_size) < 1:
            raise CardError(f"simcc needs a positive split ratio and size, got {self.split_ratio}, {self.input_size}")

    @classmethod
    def from_card(cls, card: Any) -> SimCC:
        """Build the codec from a ``ModelCard`` (input_size, simcc_split_ratio, sigma, decode, blur_kernel_size)."""
        if card.codec != cls.name or card.simcc_split_ratio is None:
            raise CardError("SimCC needs a card with codec 'simcc' and a simcc_split_ratio")
        return cls(card.input_size, card.simcc_split_ratio, sigma_pair(card.sigma), card.decode, card.blur_kernel_size)

    @property
    def bins(self) -> tuple[int, int]:
        """Vector lengths (Wx, Wy) = round((W, H) * r), as MMPose (np.around)."""
        width, height = self.input_size
        return int(np.around(width * self.split_ratio)), int(np.around(height * self.split_ratio))

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(N, K, 2) input-pixel keypoints -> {"simcc_x": (N, K, Wx), "simcc_y": (N, K, Wy)}, (N, K) weights.

        Labels are exp(-(t - mu)^2 / (2 sigma^2)) with the exact mu = x * r (MMPose rounds mu to a whole bin).
        Weight 0 for invisible keypoints and where ``mu - 3s >= bins`` or ``mu + 3s + 1 < 0`` on either axis.
        """
        kp, mask = check_keypoints(keypoints, visible)
        (wx, wy), (sx, sy) = self.bins, self.sigma
        mu = kp * self.split_ratio
        mx, my = mu[..., 0], mu[..., 1]
        outside = (mx - 3 * sx >= wx) | (my - 3 * sy >= wy) | (mx + 3 * sx + 1 < 0) | (my + 3 * sy + 1 < 0)
        weights = mask & ~outside
        simcc_x = (gaussian_profiles(mx, wx, sx) * weights[..., None]).astype(np.float32)
        simcc_y = (gaussian_profiles(my, wy, sy) * weights[..., None]).astype(np.float32)
        return {"simcc_x": simcc_x, "simcc_y": simcc_y}, weights.astype(np.float32)

    def _read(self, outputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        wx, wy = self.bins
        sx = read_output(outputs, "simcc_x", (wx,), f"input width {self.input_size[0]} x split ratio")
        sy = read_output(outputs, "simcc_y", (wy,), f"input height {self.input_size[1]} x split ratio")
        if sx.shape[:2] != sy.shape[:2]:
            raise OutputError(f"model outputs 'simcc_x' {sx.shape} and 'simcc_y' {sy.shape} disagree on (N, K)")
        return sx, sy

    def decode(self, outputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """{"simcc_x", "simcc_y"} -> ((N, K, 2) keypoints in input pixels, (N, K) min(max_x, max_y) scores)."""
        sx, sy = self._read(outputs)
        n, k = sx.shape[:2]
        coords, maxima = [], []
        for vec in (sx.reshape(n * k, sx.shape[2]), sy.reshape(n * k, sy.shape[2])):  # the two axes, not keypoints
            idx = np.argmax(vec, axis=1) if len(vec) else np.zeros(0, np.int64)
            val = vec[np.arange(len(vec)), idx]
            pos = idx.astype(np.float64)
            if self.refine == "dark" and len(vec):
                pos += refine_dark_1d(vec, idx, val, self.blur_kernel_size)
            coords.append(pos / self.split_ratio)
            maxima.append(val)
        keypoints = np.stack(coords, axis=1).reshape(n, k, 2).astype(np.float32)
        return keypoints, np.minimum(*maxima).reshape(n, k).astype(np.float32)

    def flip_back(self, outputs: Mapping[str, np.ndarray], flip_index: np.ndarray) -> dict[str, np.ndarray]:
        """Mirror and shift ``simcc_x`` (by 1 - r bins for round(W r) = W r), permute both by ``flip_index``."""
        sx, sy = self._read(outputs)
        index = check_flip_index(flip_index, sx.shape[1])
        shift = flip_shift(self.bins[0], self.split_ratio, 0.0, self.input_size[0])
        return {"simcc_x": mirror(sx, index, shift), "simcc_y": mirror(sy, index, 0.0, flip=False)}
