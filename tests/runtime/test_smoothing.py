"""One-Euro filter against a direct scalar transcription of the paper's algorithm, and its two regimes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgepose.errors import InputError
from edgepose.video.smoothing import OneEuroFilter


def scalar_one_euro(samples, times, min_cutoff, beta, d_cutoff):
    """The paper's pseudo-code, one scalar at a time, written out longhand."""
    out, x_prev, dx_prev, t_prev = [], None, 0.0, None
    for x, t in zip(samples, times, strict=True):
        if x_prev is None:
            x_prev, t_prev = x, t
            out.append(x)
            continue
        dt = t - t_prev
        a_d = 1 / (1 + 1 / (2 * math.pi * d_cutoff) / dt)
        dx_prev = dx_prev + a_d * ((x - x_prev) / dt - dx_prev)
        cutoff = min_cutoff + beta * abs(dx_prev)
        a = 1 / (1 + 1 / (2 * math.pi * cutoff) / dt)
        x_prev = x_prev + a * (x - x_prev)
        t_prev = t
        out.append(x_prev)
    return np.array(out)


def test_matches_the_scalar_reference_on_random_streams():
    rng = np.random.default_rng(0)
    times = np.cumsum(rng.uniform(0.01, 0.05, 60))
    stream = np.cumsum(rng.normal(0, 3, (60, 17, 2)), axis=0)
    filt = OneEuroFilter(min_cutoff=0.8, beta=0.1, d_cutoff=1.2)
    got = np.stack([filt(x, t) for x, t in zip(stream, times, strict=True)])
    for k, c in [(0, 0), (5, 1), (16, 0)]:
        want = scalar_one_euro(stream[:, k, c], times, 0.8, 0.1, 1.2)
        np.testing.assert_allclose(got[:, k, c], want, rtol=1e-12, atol=1e-12)


def test_still_jitter_is_damped_and_fast_motion_is_followed():
    rng = np.random.default_rng(1)
    t = np.arange(200) / 30.0
    jitter = 100 + rng.normal(0, 2, 200)
    filt = OneEuroFilter(min_cutoff=0.5, beta=0.02)  # beta in 1/px: pixel speeds are large numbers
    smooth = np.array([filt(np.array([x]), ti)[0] for x, ti in zip(jitter, t, strict=True)])
    assert smooth[50:].std() < 0.5 * jitter[50:].std()
    ramp = 100 + 300 * t  # 300 px/s
    filt.reset()
    follow = np.array([filt(np.array([x]), ti)[0] for x, ti in zip(ramp, t, strict=True)])
    assert abs(follow[-1] - ramp[-1]) < 0.05 * 300  # lags well under 0.05 s of motion once moving


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="min_cutoff"):
        OneEuroFilter(min_cutoff=0)
    filt = OneEuroFilter()
    filt(np.zeros(2), 0.0)
    with pytest.raises(InputError, match="increasing"):
        filt(np.zeros(2), 0.0)
    with pytest.raises(InputError, match="shape"):
        filt(np.zeros(3), 1.0)
