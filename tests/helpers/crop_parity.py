"""GPU crop vs CPU crop, honest about the OpenCV in use.

OpenCV >= 4.11 warps uint8 images in floating point, like the CUDA kernel: the two agree within one grey level
(tests.helpers.crop_cases). Older OpenCV (JetPack 6 ships 4.8.0) warps in fixed point: source coordinates rounded to
1/32 pixel (INTER_BITS = 5), bilinear weights in 15 bits (INTER_REMAP_COEF_BITS), the sum rounded half up
(modules/imgproc/src/imgwarp.cpp ``WarpAffineInvoker``, ``remapBilinear``). ``fixed_point_crop`` is that arithmetic
in numpy (checked equal to OpenCV 4.10's ``Cropper`` output); ``assert_cpu_parity`` holds a GPU batch to the CPU
batch with ``edgepose.cuda.crop.cpu_parity_levels()`` for the installed OpenCV.
"""

from __future__ import annotations

import numpy as np

from edgepose.affine import Affine
from edgepose.card import ModelCard
from edgepose.cuda.crop import channel_tables
from tests.helpers.crop_cases import assert_same_crops, grey

INTER_BITS, AB_BITS, COEF_BITS = 5, 10, 15


def _opencv_inverse(m: np.ndarray) -> np.ndarray:
    """``cv::invertAffineTransform`` in double, term for term (a numpy inverse can differ in the last bit)."""
    d = m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]
    d = 1.0 / d if d != 0 else 0.0
    a11, a22, a12, a21 = m[1, 1] * d, m[0, 0] * d, -m[0, 1] * d, -m[1, 0] * d
    return np.array([[a11, a12, -a11 * m[0, 2] - a12 * m[1, 2]], [a21, a22, -a21 * m[0, 2] - a22 * m[1, 2]]])


def fixed_point_crop(frame: np.ndarray, affine: Affine, card: ModelCard) -> np.ndarray:
    """The (N, 3, H, W) float32 batch OpenCV < 4.11's uint8 ``warpAffine`` (INTER_LINEAR, BORDER_CONSTANT 0) and the
    card's LUT produce."""
    source, tables = channel_tables(card)
    width, height = card.input_size
    xs, ys = np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64)
    padded = np.zeros((frame.shape[0] + 4, frame.shape[1] + 4, 3), np.int64)  # 0 border: neighbours outside read 0
    padded[2:-2, 2:-2] = frame
    out = np.empty((len(affine), 3, height, width), np.float32)
    for n, matrix in enumerate(affine.matrices):
        m = _opencv_inverse(np.asarray(matrix, np.float64))
        coords = []
        for row in (0, 1):  # X = (round((m1*y + m2) * 1024) + 16 + round(m0*x * 1024)) >> 5, in 1/32 pixel
            base = np.rint((m[row, 1] * ys + m[row, 2]) * (1 << AB_BITS)).astype(np.int64) + (1 << (AB_BITS - 6))
            delta = np.rint(m[row, 0] * xs * (1 << AB_BITS)).astype(np.int64)
            coords.append((base[:, None] + delta[None, :]) >> (AB_BITS - INTER_BITS))
        fx, fy = coords[0] & 31, coords[1] & 31
        x0 = np.clip(coords[0] >> INTER_BITS, -2, frame.shape[1]) + 2
        y0 = np.clip(coords[1] >> INTER_BITS, -2, frame.shape[0]) + 2
        weights = [(32 - fx) * (32 - fy), fx * (32 - fy), (32 - fx) * fy, fx * fy]  # x32: exact 15-bit weights
        taps = [padded[y0, x0], padded[y0, x0 + 1], padded[y0 + 1, x0], padded[y0 + 1, x0 + 1]]
        total = sum(t * (w[..., None] << 5) for t, w in zip(taps, weights, strict=True))
        levels = np.clip((total + (1 << (COEF_BITS - 1))) >> COEF_BITS, 0, 255)
        for c, src in enumerate(source):
            out[n, c] = tables[c][levels[..., src]]
    return out


def assert_within_levels(got: np.ndarray, want: np.ndarray, card: ModelCard, levels: float) -> None:
    """Every value within ``levels`` grey levels (plus float16 rounding where a batch is float16)."""
    diff = np.abs(grey(got, card) - grey(want, card))
    limit = levels + 1e-3 + (2.0**-9 * max(card.std) if np.float16 in (got.dtype, want.dtype) else 0.0)
    assert diff.max() <= limit, f"max difference {diff.max():.4f} grey levels, allowed {levels}"


def assert_cpu_parity(gpu: np.ndarray, cpu: np.ndarray, card: ModelCard) -> None:
    """GPU crops against ``Cropper``'s: tests.helpers.crop_cases' bound on OpenCV >= 4.11, the fixed-point bound
    (``cpu_parity_levels()``) on older OpenCV."""
    from edgepose.cuda.crop import cpu_parity_levels, opencv_float_warp

    if opencv_float_warp():
        assert_same_crops(gpu, cpu, card)
    else:
        assert_within_levels(gpu, cpu, card, cpu_parity_levels())
