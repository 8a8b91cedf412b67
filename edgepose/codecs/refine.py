"""Sub-pixel refinements of an integer argmax: quarter-pixel shift, DARK, UDP-DARK and 1-D DARK for SimCC.

Every function is vectorised over a stack of M maps (M = N * K) and returns float64 offsets to add to the integer
argmax. Refinement is skipped (offset 0) where the map's maximum is <= 0, and for DARK where the Hessian of the
log-map is singular or not negative-definite (no maximum to step to). Neighbours outside the map read the nearest
edge value (edge padding); 2-D DARK with its +-2 stencil refines only argmaxes at least 2 pixels inside the map,
as MMPose does (edge padding there gave steps of up to 60 heatmap pixels on clean Gaussians cut by the border).
"""

from __future__ import annotations

import numpy as np

from edgepose.codecs.utils import blur_around, blur_rows, blurred_max, gather, keep_max, stacked_left

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


def _clamped(block: np.ndarray, x: np.ndarray, y: np.ndarray, height: int, width: int) -> np.ndarray:
    """(M, 5, 5) values around (x, y) with the cells outside the map replaced by the nearest cell inside."""
    d = np.arange(-2, 3)
    iy = np.clip(y[:, None] + d, 0, height - 1) - y[:, None] + 2
    ix = np.clip(x[:, None] + d, 0, width - 1) - x[:, None] + 2
    return block[np.arange(len(block))[:, None, None], iy[:, :, None], ix[:, None, :]]


def _log_block(
    maps: np.ndarray, x: np.ndarray, y: np.ndarray, vals: np.ndarray, active: np.ndarray, ksize: int,
    clip: tuple[float, float | None], stencil: np.ndarray,
) -> np.ndarray:
    """DARK's modulated map (blur, rescale to the blurred map's max, clip, log) around each argmax, edge-clamped.

    Returns (M, 25) float64 with [m, (2+dy)*5 + 2+dx] = the value at (x+dx, y+dy), read from the nearest pixel
    inside the map, up to a constant per map, which the ``stencil``'s differences cancel (rows where ``active``
    is False: unspecified). The blur is evaluated only in this neighbourhood (``blur_around``), in float64.
    Skipping the rescale changes nothing unless the clip to (lo, hi) bites on a cell the stencil reads: the
    rescale factor f = max(map) / max(blurred map) is >= 1 (for max(map) > 0 the blurred map, a weighted mean with
    weights summing to 1, never exceeds it) and the rescaled block never exceeds max(map), so the clip cannot bite
    where those cells are above lo and max(map) is below hi. The few maps where it may bite get the exact rescale
    (``blurred_max``) and the clip.
    """
    height, width = maps.shape[1:]
    lo, hi = (None if c is None else float(np.float32(c)) for c in clip)  # MMPose clips float32 maps
    block = blur_around(maps, x, y, ksize, reach=2)
    if len(x) and (x.min() < 2 or y.min() < 2 or x.max() > width - 3 or y.max() > height - 3):  # a peak near the edge:
        block = _clamped(block, x, y, height, width)  # read its outside neighbours from the nearest edge pixel
    flat = block.reshape(len(block), 25)
    margin = 1e-9  # relative: the kernel's rounded weights may sum to 1 + 1e-16
    clipped = flat[:, stencil.any(axis=1)].min(axis=1) <= lo * (1 + margin)
    if hi is not None:
        clipped |= vals >= hi * (1 - margin)
    exact = np.flatnonzero(active & clipped)
    if len(exact):  # MMPose's rescale to the blurred map's maximum, clip and log, for these maps only
        bmax = blurred_max(maps[exact], ksize)
        scale = np.where(bmax > 0, vals[exact] / np.where(bmax > 0, bmax, 1), 1)
        flat[exact] *= scale[:, None]
        flat[exact] = np.maximum(flat[exact], lo) if hi is None else np.clip(flat[exact], lo, hi)
    safe = np.where(active[:, None], flat, 1.0)  # inactive rows: any positive value (their offsets are 0)
    return np.log(np.maximum(safe, lo))


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


def _stencil_apply(logs: np.ndarray, stencil: np.ndarray) -> np.ndarray:
    """(M, 25) log-values times a (25, T) stencil -> (M, T), as M small products (``stacked_left``)."""
    return stacked_left(stencil.T, logs.reshape(len(logs), 25, 1))[:, :, 0]


def refine_dark(
    maps: np.ndarray, x: np.ndarray, y: np.ndarray, vals: np.ndarray, ksize: int
) -> tuple[np.ndarray, np.ndarray]:
    """MMPose ``refine_keypoints_dark``: log of the blurred map clipped at 1e-10, +-1/+-2 central differences.

    Only argmaxes with 2 <= x <= w - 3 and 2 <= y <= h - 3 are refined (MMPose: ``1 < x < W - 2``).
    """
    height, width = maps.shape[1:]
    active = (vals > 0) & (x >= 2) & (x <= width - 3) & (y >= 2) & (y <= height - 3)
    d = _stencil_apply(_log_block(maps, x, y, vals, active, ksize, (1e-10, None), DARK_STENCIL), DARK_STENCIL)
    return _newton(*d.T, active)


def refine_dark_udp(
    maps: np.ndarray, x: np.ndarray, y: np.ndarray, vals: np.ndarray, ksize: int
) -> tuple[np.ndarray, np.ndarray]:
    """MMPose ``refine_keypoints_dark_udp``: log of the blurred map clipped to [0.001, 50], +-1 differences.

    As MMPose does, float32 epsilon is added to the Hessian's diagonal before the step.
    """
    active = vals > 0
    logs = _log_block(maps, x, y, vals, active, ksize, (1e-3, 50.0), DARK_UDP_STENCIL)
    dx, dy, dxx, dxy, dyy = _stencil_apply(logs, DARK_UDP_STENCIL).T
    return _newton(dx, dy, dxx + _EPS32, dxy, dyy + _EPS32, active)


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
