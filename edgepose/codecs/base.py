"""The ``Codec`` protocol and helpers shared by the keypoint codecs.

Shapes: N persons, K keypoints, heatmaps (N, K, h, w), SimCC vectors (N, K, L). Coordinates follow
``edgepose.affine``: integer values at pixel centres.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import cv2
import numpy as np

from edgepose.errors import CardError, InputError, OutputError


@runtime_checkable
class Codec(Protocol):
    """Turns keypoints into training targets and model outputs back into keypoints (model-input pixels)."""

    name: ClassVar[str]
    output_keys: ClassVar[tuple[str, ...]]

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(N, K, 2) keypoints and (N, K) visibility -> (targets by output key, (N, K) float32 weights)."""
        ...

    def decode(self, outputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Model outputs -> ((N, K, 2) float32 keypoints in input pixels, (N, K) float32 scores)."""
        ...

    def flip_back(self, outputs: Mapping[str, np.ndarray], flip_index: np.ndarray) -> dict[str, np.ndarray]:
        """Outputs for the horizontally flipped crop -> outputs aligned with the unflipped crop."""
        ...


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
    """A (K,) permutation of 0..K-1 as int64 (from ``edgepose.coco.flip_index``)."""
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
    """OpenCV's 1-D Gaussian kernel for ``ksize`` with its default sigma (what GaussianBlur uses for sigmaX=0)."""
    return cv2.getGaussianKernel(ksize, 0).astype(np.float32)[:, 0]


@functools.lru_cache(maxsize=8)
def _blur_operator(ksize: int, reach: int) -> np.ndarray:
    """(S*S, B*B) matrix taking a flattened (S, S) patch, S = 2*(reach + ksize//2) + 1, to its blurred (B, B) centre."""
    kernel = gaussian_kernel(ksize)
    span, size = 2 * (reach + ksize // 2) + 1, 2 * reach + 1
    band = np.zeros((span, size), np.float32)  # band[j, b] = kernel[j - b]
    for b in range(size):
        band[b : b + ksize, b] = kernel
    return np.kron(band, band)


def blur_around(maps: np.ndarray, x: np.ndarray, y: np.ndarray, ksize: int, reach: int = 2) -> np.ndarray:
    """The zero-padded Gaussian blur of each map, evaluated only around its argmax.

    Returns (M, 2*reach+1, 2*reach+1): entry [m, reach+dy, reach+dx] equals the blurred map at (x+dx, y+dy)
    wherever that pixel lies inside the map (MMPose blurs each map padded with zeros). DARK reads nothing else, so
    this replaces blurring whole maps (h*w*ksize^2 work each) with one gather and one small matrix product.
    """
    count, height, width = maps.shape
    span = np.arange(-(reach + ksize // 2), reach + ksize // 2 + 1)
    rows, cols = y[:, None] + span, x[:, None] + span
    flat = (np.arange(count)[:, None, None] * height + np.clip(rows, 0, height - 1)[:, :, None]) * width
    patch = np.take(maps, flat + np.clip(cols, 0, width - 1)[:, None, :])
    r = span[-1]
    if len(x) and (y.min() < r or y.max() >= height - r or x.min() < r or x.max() >= width - r):
        patch *= ((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[:, None, :]
    size = 2 * reach + 1
    return (patch.reshape(count, -1) @ _blur_operator(ksize, reach)).reshape(count, size, size)


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


@dataclass(frozen=True)
class HeatmapCodec:
    """Shared part of the 2-D heatmap codecs: fields, validation, decode skeleton and flip_back.

    A subclass sets ``name`` and ``refine_modes`` and defines ``encode``, ``heatmap_map`` (the affine map of the
    input axis onto the heatmap axis) and ``_refine`` (sub-pixel offsets of the integer argmax).
    """

    name: ClassVar[str] = ""
    output_keys: ClassVar[tuple[str, ...]] = ("heatmaps",)
    refine_modes: ClassVar[tuple[str, ...]] = ("none",)

    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]
    sigma: tuple[float, float] = (2.0, 2.0)
    refine: str = "none"
    blur_kernel_size: int = 11

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "input_size", (int(self.input_size[0]), int(self.input_size[1])))
        set_(self, "heatmap_size", (int(self.heatmap_size[0]), int(self.heatmap_size[1])))
        set_(self, "sigma", sigma_pair(self.sigma))
        if min(self.input_size) < 2 or min(self.heatmap_size) < 2:
            sizes = f"{list(self.input_size)}, {list(self.heatmap_size)}"
            raise CardError(f"codec '{self.name}' needs input and heatmap sizes of at least 2x2, got {sizes}")
        if self.refine not in self.refine_modes:
            raise CardError(f"codec '{self.name}' decode must be one of {list(self.refine_modes)}, got {self.refine!r}")
        if self.blur_kernel_size < 1 or self.blur_kernel_size % 2 == 0:
            raise CardError(f"blur_kernel_size must be a positive odd integer, got {self.blur_kernel_size}")

    @classmethod
    def from_card(cls, card: Any) -> HeatmapCodec:
        """Build the codec from a ``ModelCard`` (input_size, heatmap_size, sigma, decode, blur_kernel_size)."""
        if card.codec != cls.name or card.heatmap_size is None:
            raise CardError(f"{cls.__name__} needs a card with codec '{cls.name}' and a heatmap_size")
        return cls(card.input_size, card.heatmap_size, sigma_pair(card.sigma), card.decode, card.blur_kernel_size)

    def heatmap_map(self) -> tuple[np.ndarray, np.ndarray]:
        """(scale, offset), each (2,) for (x, y): heatmap coordinate = scale * input coordinate + offset."""
        raise NotImplementedError

    def _refine(self, maps: np.ndarray, x: np.ndarray, y: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, ...]:
        raise NotImplementedError

    def _read(self, outputs: Mapping[str, np.ndarray]) -> np.ndarray:
        w, h = self.heatmap_size
        return read_output(outputs, "heatmaps", (h, w), f"heatmap_size [{w}, {h}]")

    def decode(self, outputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """{"heatmaps": (N, K, h, w)} -> ((N, K, 2) keypoints in input pixels, (N, K) heatmap maxima)."""
        maps = self._read(outputs)
        n, k, h, w = maps.shape
        flat = maps.reshape(n * k, h, w)
        x, y, vals = argmax_2d(flat)
        xy = np.stack([x, y], axis=1).astype(np.float64)
        if self.refine != "none" and len(flat):
            ox, oy = self._refine(flat, x, y, vals)
            xy += np.stack([ox, oy], axis=1)
        scale, offset = self.heatmap_map()
        keypoints = (xy - offset) / scale
        return keypoints.reshape(n, k, 2).astype(np.float32), vals.reshape(n, k).astype(np.float32)

    def flip_back(self, outputs: Mapping[str, np.ndarray], flip_index: np.ndarray) -> dict[str, np.ndarray]:
        """Mirror x, permute keypoints by ``flip_index`` and shift by this codec's exact sub-pixel amount."""
        maps = self._read(outputs)
        index = check_flip_index(flip_index, maps.shape[1])
        scale, offset = self.heatmap_map()
        shift = flip_shift(self.heatmap_size[0], scale[0], offset[0], self.input_size[0])
        return {"heatmaps": mirror(maps, index, shift)}
