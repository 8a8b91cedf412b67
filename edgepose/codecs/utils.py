"""Math helpers shared by the keypoint codecs: input/output checks, flipping, blurring, argmax and Gaussians.

Shapes: N persons, K keypoints, heatmaps (N, K, h, w), SimCC vectors (N, K, L). Coordinates follow
``edgepose.affine``: integer values at pixel centres.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import cv2
import numpy as np

from edgepose.errors import InputError, OutputError


def sigma_pair(sigma: float | tuple[float, float]) -> tuple[float, float]:
    """A card's sigma (one number or (sx, sy)) as an (sx, sy) pair of floats."""
    if isinstance(sigma, (tuple, list)):
        return float(sigma[0]), float(sigma[1])
    return float(sigma), float(sigma)


def check_keypoints(keypoints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate encode inputs: (N, K, 2) keypoints (float64) and the (N, K) mask of visible ones (vis >= 0.5)."""
    kp = np.asarray(keypoints, dtype=np.float64)
    vis = np.asarray(visible, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[2] != 2:
        raise InputError(f"keypoints must have shape (N, K, 2), got {kp.shape}")
    if vis.shape != kp.shape[:2]:
        raise InputError(f"visible must have shape {kp.shape[:2]} to match the keypoints, got {vis.shape}")
    mask = vis >= 0.5
    bad = mask & ~np.isfinite(kp).all(axis=2)
    if bad.any():
        n, k = np.argwhere(bad)[0]
        raise InputError(f"visible keypoint (person {n}, keypoint {k}) has a NaN or infinite coordinate")
    return np.where(mask[..., None], kp, 0.0), mask


def read_output(outputs: Mapping[str, np.ndarray], key: str, tail: tuple[int, ...], what: str) -> np.ndarray:
    """Fetch ``outputs[key]`` as float32 of shape (N, K, *tail); raise OutputError naming the key otherwise."""
    if not isinstance(outputs, Mapping):
        raise OutputError(f"model outputs must be a mapping of name -> array (expected key '{key}')")
    if key not in outputs:
        raise OutputError(f"model outputs lack '{key}' (got {sorted(outputs)}); check the card's output_names")
    arr = np.asarray(outputs[key])
    want = "(N, K, " + ", ".join(str(t) for t in tail) + ")"
    if arr.ndim != 2 + len(tail):
        raise OutputError(f"model output '{key}' must have {2 + len(tail)} dims {want}, got shape {arr.shape}")
    if arr.shape[2:] != tail:
        raise OutputError(f"model output '{key}' has shape {arr.shape} but the card's {what} expects {want}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise OutputError(f"model output '{key}' has dtype {arr.dtype}; expected a float array")
    arr = arr.astype(np.float32, copy=False)
    finite = np.isfinite(arr)
    if not finite.all():
        bad = ~finite.reshape(arr.shape[0], arr.shape[1], -1).all(axis=2)  # (N, K): keypoints with a bad value
        persons = np.flatnonzero(bad.any(axis=1))
        raise OutputError(
            f"NaN or Inf in model output '{key}' for {len(persons)} of {arr.shape[0]} person(s) (first: person "
            f"{persons[0]}, keypoints {np.flatnonzero(bad[persons[0]]).tolist()}): the model or engine is broken or "
            "overflows (an FP16 engine? compare it with the FP32 ONNX model)"
        )
    return arr


def check_flip_index(flip_index: np.ndarray, num_keypoints: int) -> np.ndarray:
    """A (K,) permutation of 0..K-1 as int64 (from ``edgepose.coco.layout.flip_index``)."""
    idx = np.asarray(flip_index)
    if idx.shape != (num_keypoints,) or not np.array_equal(np.sort(idx), np.arange(num_keypoints)):
        raise InputError(f"flip_index must be a permutation of 0..{num_keypoints - 1}, got {idx.tolist()}")
    return idx.astype(np.int64)


def flip_shift(length: int, scale: float, offset: float, input_len: int) -> float:
    """Sub-pixel shift (to the right, in target pixels) that re-aligns a flipped-back target with the unflipped one.

    The target axis maps input x to ``t = scale * x + offset`` over ``length`` cells. A crop point x lies at
    ``input_len - 1 - x`` in the flipped crop; mirroring that target's axis puts its peak at
    ``t + (length - 1 - scale * (input_len - 1) - 2 * offset)``, so the shift is minus that displacement.
    """
    shift = -(length - 1 - scale * (input_len - 1) - 2.0 * offset)
    return round(shift, 9) + 0.0  # UDP's exact 0 (not 1e-15), and no -0.0


def shift_x(arr: np.ndarray, shift: float) -> np.ndarray:
    """Shift along the last axis by ``shift`` cells to the right: linear interpolation, edge values kept."""
    length = arr.shape[-1]
    src = np.arange(length, dtype=np.float64) - shift
    i0 = np.floor(src)
    frac = (src - i0).astype(np.float32)
    i0 = i0.astype(np.int64)
    lo = np.clip(i0, 0, length - 1)
    hi = np.clip(i0 + 1, 0, length - 1)
    if not frac.any():
        return arr[..., lo]
    return arr[..., lo] * (1.0 - frac) + arr[..., hi] * frac


def mirror(arr: np.ndarray, flip_index: np.ndarray, shift: float, flip: bool = True) -> np.ndarray:
    """Permute keypoints (axis 1) by ``flip_index``; with ``flip``, mirror the last axis and shift it."""
    out = arr[:, flip_index]
    if flip:
        out = out[..., ::-1]
        if shift != 0.0:
            return shift_x(out, shift).astype(np.float32, copy=False)
    return np.ascontiguousarray(out, dtype=np.float32)


def gaussian_kernel(ksize: int) -> np.ndarray:
    """OpenCV's 1-D Gaussian kernel (float64) for ``ksize`` with its default sigma (GaussianBlur's for sigmaX=0)."""
    return cv2.getGaussianKernel(ksize, 0)[:, 0]


@functools.lru_cache(maxsize=8)
def _blur_band(ksize: int, reach: int) -> np.ndarray:
    """(S, B) band matrix, S = 2*(reach + ksize//2) + 1, B = 2*reach + 1: a length-S line times it is the 1-D
    Gaussian blur at its B central cells (band[j, b] = kernel[j - b])."""
    kernel = gaussian_kernel(ksize)
    span, size = 2 * (reach + ksize // 2) + 1, 2 * reach + 1
    band = np.zeros((span, size))
    for b in range(size):
        band[b : b + ksize, b] = kernel
    band.flags.writeable = False
    return band


@functools.lru_cache(maxsize=8)
def window_offsets(width: int, radius: int) -> np.ndarray:
    """(S, S) flat-index offsets of the square window of ``radius`` about a pixel of a map ``width`` wide."""
    span = np.arange(-radius, radius + 1)
    offsets = span[:, None] * width + span[None, :]
    offsets.flags.writeable = False
    return offsets


def blur_around(
    maps: np.ndarray, x: np.ndarray, y: np.ndarray, ksize: int, reach: int = 2, index: np.ndarray | None = None
) -> np.ndarray:
    """The zero-padded Gaussian blur of each map, evaluated only around its argmax, in float64.

    Returns (M, 2*reach+1, 2*reach+1): entry [m, reach+dy, reach+dx] equals the blurred map at (x+dx, y+dy)
    wherever that pixel lies inside the map (MMPose blurs each map padded with zeros). DARK reads nothing else, so
    this replaces blurring whole maps (h*w*ksize^2 work each) with one gather of an (S, S) patch per map and the
    separable blur as two stacked products with ``band.T`` (see ``stacked_left``). Point m lies on map m, or on
    map ``index[m]`` when given.
    """
    count, height, width = maps.shape
    r = reach + ksize // 2
    if len(x) == 0:
        return np.zeros((0, 2 * reach + 1, 2 * reach + 1))
    which = np.arange(count) if index is None else index
    if y.min() >= r and y.max() < height - r and x.min() >= r and x.max() < width - r:  # all windows inside
        centre = (which * height + y) * width + x
        patch = np.take(maps, centre[:, None, None] + window_offsets(width, r)).astype(np.float64)
    else:
        span = np.arange(-r, r + 1)
        rows, cols = y[:, None] + span, x[:, None] + span
        flat = (which[:, None, None] * height + np.clip(rows, 0, height - 1)[:, :, None]) * width
        patch = np.take(maps, flat + np.clip(cols, 0, width - 1)[:, None, :]).astype(np.float64)
        patch *= ((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[:, None, :]
    band_t = _blur_band(ksize, reach).T
    columns = stacked_left(band_t, patch)  # [m, b, j]: blurred down the rows
    return stacked_left(band_t, columns.transpose(0, 2, 1)).transpose(0, 2, 1)  # and along them


def blurred_max(maps: np.ndarray, ksize: int) -> np.ndarray:
    """(M,) float64 maximum of each zero-padded Gaussian-blurred (M, h, w) map (MMPose ``gaussian_blur``'s).

    Whole maps are blurred in float32 (one OpenCV call, 2*pad zero rows between maps so none reads another's
    pixels) only to find the peak; the blur is then evaluated in float64 at every pixel within float32 rounding
    of that peak, and the largest of those is the maximum.
    """
    count, height, width = maps.shape
    pad = ksize // 2
    padded = np.zeros((count, height + 2 * pad, width + 2 * pad), np.float32)
    padded[:, pad:pad + height, pad:pad + width] = maps
    kernel = gaussian_kernel(ksize).astype(np.float32)
    tall = cv2.sepFilter2D(padded.reshape(-1, width + 2 * pad), -1, kernel, kernel, borderType=cv2.BORDER_CONSTANT)
    blurred = tall.reshape(padded.shape)[:, pad:pad + height, pad:pad + width].reshape(count, -1)
    top = blurred.max(axis=1)
    slack = 1e-5 * np.abs(maps).reshape(count, -1).max(axis=1)  # far above float32 rounding of a weighted mean
    which, flat = np.nonzero(blurred >= (top - slack)[:, None])
    y, x = np.divmod(flat, width)
    values = blur_around(maps, x, y, ksize, reach=0, index=which)[:, 0, 0]
    out = np.full(count, -np.inf)
    np.maximum.at(out, which, values)
    return out


def stacked_left(matrix: np.ndarray, stack: np.ndarray) -> np.ndarray:
    """``matrix @ stack[m]`` for every m: (A, B) @ (M, B, C) -> (M, A, C).

    numpy multiplies a stack matrix by matrix, so every BLAS call stays far below OpenBLAS's threading threshold.
    One 2-D product over all maps at once (e.g. (M, 225) @ (225, 25) for M = 8 x 17) crosses it, and waking
    OpenBLAS's threads on a busy CPU (ONNX Runtime's own threads spin after each run) stalls for milliseconds.
    """
    return np.matmul(matrix, stack)


def blur_rows(rows: np.ndarray, ksize: int) -> np.ndarray:
    """Gaussian-blur each row of an (M, L) float32 array along L, zero outside (MMPose ``gaussian_blur1d``)."""
    if rows.size == 0 or ksize == 1:
        return rows.copy()
    return cv2.GaussianBlur(rows, (ksize, 1), 0, borderType=cv2.BORDER_CONSTANT)


def keep_max(blurred: np.ndarray, original_max: np.ndarray) -> np.ndarray:
    """Per-map factor that rescales a blurred map to its original maximum (1 where the blurred max is 0)."""
    bmax = blurred.reshape(len(blurred), -1).max(axis=1) if blurred.size else np.zeros(len(blurred), np.float32)
    safe = np.where(bmax != 0, bmax, 1).astype(np.float32)
    return np.where(bmax != 0, original_max / safe, 1).astype(np.float32)


def argmax_2d(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(M, h, w) maps -> integer (x, y) of each map's first maximum and the maximum value."""
    flat = maps.reshape(len(maps), maps.shape[1] * maps.shape[2])
    idx = np.argmax(flat, axis=1) if len(flat) else np.zeros(0, np.int64)
    vals = np.take_along_axis(flat, idx[:, None], axis=1)[:, 0]
    y, x = np.divmod(idx, maps.shape[2])
    return x, y, vals


def gather(maps: np.ndarray, x: np.ndarray, y: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``maps[m, y+dy, x+dx]`` for every map m, reading the edge-padded map (indices clamped to the map)."""
    height, width = maps.shape[1:]
    xs = np.clip(x + dx, 0, width - 1)
    ys = np.clip(y + dy, 0, height - 1)
    return maps[np.arange(len(maps)), ys, xs]


def gaussian_profiles(mu: np.ndarray, length: int, sigma: float) -> np.ndarray:
    """exp(-(t - mu)^2 / (2 sigma^2)) for t = 0..length-1: (N, K) centres -> (N, K, length) float64."""
    t = np.arange(length, dtype=np.float64)
    return np.exp(-((t - mu[..., None]) ** 2) / (2.0 * sigma * sigma))
