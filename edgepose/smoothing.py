"""One-Euro filter (Casiez, Roussel, Vogel, CHI 2012) for keypoint streams: smooth when still, quick when moving.

Per coordinate: the cutoff frequency rises with the (filtered) speed, ``cutoff = min_cutoff + beta * |dx/dt|``,
and an exponential smoothing with ``alpha = 1 / (1 + tau / dt)``, ``tau = 1 / (2 pi cutoff)``, follows it.
"""

from __future__ import annotations

import math

import numpy as np

from edgepose.errors import InputError


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters arrays of one fixed shape (e.g. one person's (K, 2) keypoints), sample by sample."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise InputError(f"One-Euro needs min_cutoff > 0, d_cutoff > 0, beta >= 0; got {min_cutoff}, "
                             f"{d_cutoff}, {beta}")
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def reset(self) -> None:
        """Forget the history (the next sample passes through unchanged)."""
        self._x = self._dx = self._t = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """The filtered value of sample ``x`` taken at time ``t`` (seconds, increasing)."""
        x = np.asarray(x, np.float64)
        if self._x is None:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        if x.shape != self._x.shape:
            raise InputError(f"One-Euro filter got shape {x.shape} after {self._x.shape}")
        dt = float(t) - self._t
        if dt <= 0:
            raise InputError(f"One-Euro filter needs increasing timestamps, got {t} after {self._t}")
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._t = float(t)
        return self._x.copy()
