"""MSRA heatmaps (SimpleBaseline / HRNet) with MMPose's unbiased Gaussian targets.

Heatmap coordinate: ``x_h = x_in * w / W`` (stride W / w, no half-pixel offset, as MMPose ``MSRAHeatmap``).
Decode: integer argmax, then ``refine`` = 'none', 'shift' (quarter pixel towards the higher neighbour) or
'dark' (MMPose ``refine_keypoints_dark``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from edgepose.codecs.heatmap import HeatmapCodec
from edgepose.codecs.refine import refine_dark, refine_shift
from edgepose.codecs.utils import check_keypoints, gaussian_profiles


@dataclass(frozen=True)
class MSRAHeatmap(HeatmapCodec):
    """Gaussian heatmaps with the peak (value 1) at the exact sub-pixel keypoint location."""

    name: ClassVar[str] = "msra"
    refine_modes: ClassVar[tuple[str, ...]] = ("none", "shift", "dark")

    def heatmap_map(self) -> tuple[np.ndarray, np.ndarray]:
        """x_h = x_in * (w / W), y_h = y_in * (h / H)."""
        return np.divide(self.heatmap_size, self.input_size), np.zeros(2)

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(N, K, 2) input-pixel keypoints -> {"heatmaps": (N, K, h, w) float32}, (N, K) float32 weights.

        Weight 0 (and an all-zero heatmap) for invisible keypoints and for those whose 3-sigma square misses the
        heatmap, with MMPose's bounds ``mu - 3s >= size`` or ``mu + 3s + 1 < 0``.
        """
        kp, mask = check_keypoints(keypoints, visible)
        w, h = self.heatmap_size
        scale, _ = self.heatmap_map()
        mu = kp * scale
        (sx, sy), rx, ry = self.sigma, 3 * self.sigma[0], 3 * self.sigma[1]
        mx, my = mu[..., 0], mu[..., 1]
        outside = (mx - rx >= w) | (my - ry >= h) | (mx + rx + 1 < 0) | (my + ry + 1 < 0)
        weights = mask & ~outside
        gx = gaussian_profiles(mx, w, sx) * weights[..., None]
        gy = gaussian_profiles(my, h, sy)
        heatmaps = (gy[..., :, None] * gx[..., None, :]).astype(np.float32)
        return {"heatmaps": heatmaps}, weights.astype(np.float32)

    def _refine(self, maps: np.ndarray, x: np.ndarray, y: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, ...]:
        if self.refine == "shift":
            return refine_shift(maps, x, y, vals)
        return refine_dark(maps, x, y, vals, self.blur_kernel_size)
