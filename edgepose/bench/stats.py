"""Latency statistics: median / p90 / p99 / max / mean in milliseconds, frames and persons per second."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgepose.errors import InputError

SUMMARY_KEYS = ("median_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms", "n")


def summarize(samples_seconds: Sequence[float] | np.ndarray) -> dict:
    """Samples in seconds -> ``{median_ms, p90_ms, p99_ms, max_ms, mean_ms, n}`` (numpy's linear percentiles)."""
    ms = np.asarray(samples_seconds, dtype=np.float64).reshape(-1) * 1e3
    if ms.size == 0:
        raise InputError("no timing samples to summarize: run at least one timed iteration (--iters >= 1)")
    if not np.all(np.isfinite(ms)) or np.any(ms < 0):
        raise InputError("timing samples must be finite and non-negative seconds")
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {"median_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99), "max_ms": float(ms.max()),
            "mean_ms": float(ms.mean()), "n": int(ms.size)}


def fps(median_ms: float) -> float:
    """Frames per second of one frame taking ``median_ms`` (0 for a non-positive time)."""
    return 1e3 / median_ms if median_ms > 0 else 0.0


def persons_per_second(persons: int, median_ms: float) -> float:
    """Persons estimated per second when a frame of ``persons`` takes ``median_ms``."""
    return persons * fps(median_ms)
