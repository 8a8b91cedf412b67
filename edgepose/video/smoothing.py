"""One-Euro filter (Casiez, Roussel, Vogel, CHI 2012) for keypoint streams: smooth when still, quick when moving.

Per coordinate: the cutoff frequency rises with the (filtered) speed, ``cutoff = min_cutoff + beta * |dx/dt|``,
and an exponential smoothing with ``alpha = 1 / (1 + tau / dt)``, ``tau = 1 / (2 pi cutoff)``, follows it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from edgepose.errors import InputError


@dataclass(frozen=True)
class SmoothingSettings:
    """One-Euro settings: ``min_cutoff`` (Hz, > 0), ``beta`` (speed coefficient, >= 0) and ``d_cutoff`` (Hz, > 0)."""

    min_cutoff: float = 1.0
    beta: float = 0.05
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        if self.min_cutoff <= 0 or self.d_cutoff <= 0 or self.beta < 0:
            raise InputError(f"One-Euro needs min_cutoff > 0, d_cutoff > 0, beta >= 0; got {self.min_cutoff}, "
                             f"{self.d_cutoff}, {self.beta}")
        for name in ("min_cutoff", "beta", "d_cutoff"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @classmethod
    def of(cls, value: SmoothingSettings | Mapping | None) -> SmoothingSettings | None:
        """``value`` as settings: settings and None pass through, a mapping gives its keyword arguments."""
        if value is None or isinstance(value, SmoothingSettings):
            return value
        return cls(**value)


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filters arrays of one fixed shape (e.g. one person's (K, 2) keypoints), sample by sample."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0) -> None:
        settings = SmoothingSettings(min_cutoff, beta, d_cutoff)
        self.min_cutoff, self.beta, self.d_cutoff = settings.min_cutoff, settings.beta, settings.d_cutoff
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    @classmethod
    def from_settings(cls, settings: SmoothingSettings) -> OneEuroFilter:
        """A filter with these (already validated) settings."""
        return cls(settings.min_cutoff, settings.beta, settings.d_cutoff)

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
