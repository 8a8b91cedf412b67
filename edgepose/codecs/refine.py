"""Sub-pixel refinements of an integer argmax: quarter-pixel shift, DARK, UDP-DARK and 1-D DARK for SimCC.

Every function is vectorised over a stack of M maps (M = N * K) and returns float64 offsets to add to the integer
argmax. Refinement is skipped (offset 0) where the map's maximum is <= 0, and for DARK where the Hessian of the
log-map is singular or not negative-definite (no maximum to step to). Neighbours outside the map read the nearest
edge value (edge padding); 2-D DARK with its +-2 stencil refines only argmaxes at least 2 pixels inside the map,
as MMPose does (edge padding there gave steps of up to 60 heatmap pixels on clean Gaussians cut by the border).
"""

from __future__ import annotations

import numpy as np

from edgepose.codecs.utils import blur_around, blur_rows, gather, keep_max

_EPS32 = float(np.finfo(np.float32).eps)


def refine_shift(maps: np.ndarray, x: np.ndarray, y: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Classic quarter-pixel shift towards the higher neighbour, per axis, for interior pixels only."""
    height, width = maps.shape[1:]
    active = vals > 0
    gx = gather(maps, x, y, 1, 0).astype(np.float64) - gather(maps, x, y, -1, 0)
    gy = gather(maps, x, y, 0, 1).astype(np.float64) - gather(maps, x, y, 0, -1)
    ox = np.where(active & (x > 0) & (x < width - 1), 0.25 * np.sign(gx), 0.0)
    oy = np.where(active & (y > 0) & (y < height - 1), 0.25 * np.sign(gy), 0.0)
    return ox, oy


def _log_block(
    maps: np.ndarray, x: np.ndarray, y: np.ndarray, vals: np.ndarray, ksize: int, lo: float, hi: float | None
) -> np.ndarray:
    """DARK's modulated map (blur, rescale to the original max, clip, log) around each argmax, edge-clamped.

    Returns (M, 5, 5) float64 with [m, 2+dy, 2+dx] = the value at (x+dx, y+dy), read from the nearest pixel inside
    the map. The blur is evaluated only in this neighbourhood (``blur_around``); the rescale uses the largest
    blurred value there, which is the blurred map's maximum for any single-peaked map.
    """
    height, width = maps.shape[1:]
    block = blur_around(maps, x, y, ksize, reach=2)
    bmax = block.reshape(len(block), -1).max(axis=1)
    scale = np.where(bmax > 0, vals / np.where(bmax > 0, bmax, 1), 1).astype(np.float32)
    near_edge = (x < 2) | (x > width - 3) | (y < 2) | (y > height - 3)
    if near_edge.any():  # read edge-clamped neighbours for peaks within 2 pixels of the border
        d = np.arange(-2, 3)
        iy = np.clip(y[:, None] + d, 0, height - 1) - y[:, None] + 2
        ix = np.clip(x[:, None] + d, 0, width - 1) - x[:, None] + 2
        block = block[np.arange(len(block))[:, None, None], iy[:, :, None], ix[:, None, :]]
    v = block * scale[:, None, None]
    v = np.maximum(v, np.float32(lo)) if hi is None else np.clip(v, np.float32(lo), np.float32(hi))
    return np.log(v.astype(np.float64))


def _newton(
    dx: np.ndarray, dy: np.ndarray, dxx: np.ndarray, dxy: np.ndarray, dyy: np.ndarray, active: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Offset -H^-1 g where H = [[dxx, dxy], [dxy, dyy]] is negative-definite; 0 elsewhere."""
    det = dxx * dyy - dxy * dxy
    ok = active & (dxx < 0) & (det > 0)
    safe = np.where(ok, det, 1.0)
    ox = np.where(ok, -(dyy * dx - dxy * dy) / safe, 0.0)
    oy = np.where(ok, -(dxx * dy - dxy * dx) / safe, 0.0)
    return ox, oy


def _stencil(terms: dict[str, dict[tuple[int, int], float]]) -> np.ndarray:
    """(25, T) matrix of finite-difference weights over a 5x5 block flattened as (2+dy)*5 + (2+dx)."""
    out = np.zeros((25, len(terms)))
    for t, weights in enumerate(terms.values()):
        for (dx, dy), w in weights.items():
            out[(2 + dy) * 5 + 2 + dx, t] += w
    return out


# Columns in _newton's order: dx, dy, dxx, dxy, dyy. MMPose refine_keypoints_dark: +-1 for the gradient and dxy,
# +-2 for dxx/dyy.
DARK_STENCIL = _stencil({
    "dx": {(1, 0): 0.5, (-1, 0): -0.5}, "dy": {(0, 1): 0.5, (0, -1): -0.5},
    "dxx": {(2, 0): 0.25, (0, 0): -0.5, (-2, 0): 0.25},
    "dxy": {(1, 1): 0.25, (1, -1): -0.25, (-1, 1): -0.25, (-1, -1): 0.25},
    "dyy": {(0, 2): 0.25, (0, 0): -0.5, (0, -2): 0.25},
})
# MMPose refine_keypoints_dark_udp: +-1 everywhere; its dxy reads (1,1), (-1,-1) and the axis neighbours.
DARK_UDP_STENCIL = _stencil({
    "dx": {(1, 0): 0.5, (-1, 0): -0.5}, "dy": {(0, 1): 0.5, (0, -1): -0.5},
    "dxx": {(1, 0): 1.0, (0, 0): -2.0, (-1, 0): 1.0},
    "dxy": {(1, 1): 0.5, (1, 0): -0.5, (0, 1): -0.5, (0, 0): 1.0, (-1, 0): -0.5, (0, -1): -0.5, (-1, -1): 0.5},
    "dyy": {(0, 1): 1.0, (0, 0): -2.0, (0, -1): 1.0},
})


def refine_dark(
    maps: np.ndarray, x: np.ndarray, y: np.ndarray, vals: np.ndarray, ksize: int
) -> tuple[np.ndarray, np.ndarray]:
    """MMPose ``refine_keypoints_dark``: log of the blurred map clipped at 1e-10, +-1/+-2 central differences.

    Only argmaxes with 2 <= x <= w - 3 and 2 <= y <= h - 3 are refined (MMPose: ``1 < x < W - 2``).
    """
    height, width = maps.shape[1:]
    inner = (x >= 2) & (x <= width - 3) & (y >= 2) & (y <= height - 3)
    d = _log_block(maps, x, y, vals, ksize, 1e-10, None).reshape(len(x), 25) @ DARK_STENCIL
    return _newton(*d.T, (vals > 0) & inner)


def refine_dark_udp(
    maps: np.ndarray, x: np.ndarray, y: np.ndarray, vals: np.ndarray, ksize: int
) -> tuple[np.ndarray, np.ndarray]:
    """MMPose ``refine_keypoints_dark_udp``: log of the blurred map clipped to [0.001, 50], +-1 differences.

    As MMPose does, float32 epsilon is added to the Hessian's diagonal before the step.
    """
    dx, dy, dxx, dxy, dyy = (_log_block(maps, x, y, vals, ksize, 1e-3, 50.0).reshape(len(x), 25) @ DARK_UDP_STENCIL).T
    return _newton(dx, dy, dxx + _EPS32, dxy, dyy + _EPS32, vals > 0)


def refine_dark_1d(rows: np.ndarray, x: np.ndarray, vals: np.ndarray, ksize: int) -> np.ndarray:
    """1-D DARK for SimCC vectors (M, L): blur, rescale, clip to [0.001, 50], log, Newton step from x-1, x, x+1.

    The step is clamped to +-1 bin and skipped where the log-vector is not concave at x.
    """
    length = rows.shape[1]
    blurred = blur_rows(rows, ksize)
    scale = keep_max(blurred, vals)
    m = np.arange(len(rows))

    def at(d: int) -> np.ndarray:
        v = blurred[m, np.clip(x + d, 0, length - 1)] * scale
        return np.log(np.clip(v, np.float32(1e-3), np.float32(50.0))).astype(np.float64)

    c, xp, xm = at(0), at(1), at(-1)
    d1 = 0.5 * (xp - xm)
    d2 = xp - 2 * c + xm
    ok = (vals > 0) & (d2 < 0)
    return np.where(ok, np.clip(-d1 / np.where(ok, d2, -1.0), -1.0, 1.0), 0.0)
