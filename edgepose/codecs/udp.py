"""UDP heatmaps (Huang et al., CVPR 2020), as MMPose ``UDPHeatmap`` with ``heatmap_type='gaussian'``.

Heatmap coordinate: ``x_h = x_in * (w - 1) / (W - 1)``: the centres of the first and last input pixels map onto
those of the first and last heatmap pixels, so flipping needs no shift. Decode: integer argmax, then
``refine`` = 'none' or 'dark' (MMPose ``refine_keypoints_dark_udp``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from edgepose.codecs.heatmap import HeatmapCodec
from edgepose.codecs.refine import refine_dark_udp
from edgepose.codecs.utils import check_keypoints, gaussian_profiles


@dataclass(frozen=True)
class UDPHeatmap(HeatmapCodec):
    """Gaussian heatmaps centred exactly at the keypoint, cut to a +-3 sigma window around its nearest pixel."""

    name: ClassVar[str] = "udp"
    refine_modes: ClassVar[tuple[str, ...]] = ("none", "dark")

    def heatmap_map(self) -> tuple[np.ndarray, np.ndarray]:
        """x_h = x_in * (w - 1) / (W - 1), likewise for y."""
        return (np.asarray(self.heatmap_size) - 1.0) / (np.asarray(self.input_size) - 1.0), np.zeros(2)

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(N, K, 2) input-pixel keypoints -> {"heatmaps": (N, K, h, w) float32}, (N, K) float32 weights.

        As MMPose ``generate_udp_gaussian_heatmaps``: the Gaussian (peak 1 at the exact location) is non-zero only
        within 3 sigma of the rounded location ``c = int(mu + 0.5)``; weight 0 for invisible keypoints and where
        ``c - 3s >= size`` or ``c + 3s + 1 < 0``. (For a non-integer 3 sigma MMPose's window is off by half a pixel;
        here it stays symmetric about c.)
        """
        kp, mask = check_keypoints(keypoints, visible)
        w, h = self.heatmap_size
        scale, _ = self.heatmap_map()
        mu = kp * scale
        centre = np.trunc(mu + 0.5)  # MMPose: (mu + 0.5).astype(int64)
        (sx, sy), rx, ry = self.sigma, 3 * self.sigma[0], 3 * self.sigma[1]
        cx, cy = centre[..., 0], centre[..., 1]
        outside = (cx - rx >= w) | (cy - ry >= h) | (cx + rx + 1 < 0) | (cy + ry + 1 < 0)
        weights = mask & ~outside
        gx = gaussian_profiles(mu[..., 0], w, sx) * (np.abs(np.arange(w) - cx[..., None]) <= rx)
        gy = gaussian_profiles(mu[..., 1], h, sy) * (np.abs(np.arange(h) - cy[..., None]) <= ry)
        gx *= weights[..., None]
        heatmaps = (gy[..., :, None] * gx[..., None, :]).astype(np.float32)
        return {"heatmaps": heatmaps}, weights.astype(np.float32)

    def _refine(self, maps: np.ndarray, x: np.ndarray, y: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, ...]:
        return refine_dark_udp(maps, x, y, vals, self.blur_kernel_size)
