"""GPU crop: one fused CUDA kernel does warp + bilinear + colour order + mean/std + NCHW for a batch of boxes.

The kernel replicates the CPU path (``edgepose.preprocess.Cropper``) sample for sample on OpenCV >= 4.11, whose
uint8 warp is floating point like the kernel's. Older OpenCV (JetPack 6 ships 4.8.0) warps in fixed point: source
coordinates rounded to 1/32 pixel, so the CPU crop then differs from the kernel's (and from the exact bilinear value)
by up to ``cpu_parity_levels()`` = 9 grey levels; the kernel is unchanged, only the CPU path is coarser.
The formula, as on OpenCV >= 4.11:

- ``Cropper.warp`` calls ``cv2.warpAffine(frame, M, flags=INTER_LINEAR, BORDER_CONSTANT, 0)`` with the forward
  matrix M (frame -> crop) and no ``WARP_INVERSE_MAP``, so OpenCV inverts M and sets
  ``dst(x, y) = src(M^-1 (x, y))`` with integer (x, y) at pixel centres (``edgepose.affine``'s convention).
- Bilinear weights from the fractional part of the source point; a neighbour outside the frame reads 0
  (BORDER_CONSTANT 0), so crops fade to black over the last half pixel, as OpenCV's do.
- OpenCV writes the warp into a uint8 crop (``saturate_cast``: round half to even, clamp to 0..255) and the LUT
  maps that level to ``(level - mean) / std`` (float32). The kernel rounds the same way (``__float2int_rn``) and
  reads the same 3 x 256 table, so both paths agree exactly except where float32 vs OpenCV's arithmetic puts a
  sample on the other side of a rounding tie: one grey level, in a tiny share of pixels.
- Output channel c reads frame channel 2 - c for ``color: rgb`` (BGR -> RGB), channel c for ``bgr``; float16
  output rounds the float32 value to nearest even, as ``ndarray.astype(np.float16)`` does.

``reference_crop`` is the slow, obvious numpy version of the same formula (float64); the tests hold the kernel to
it, and the OpenCV path to it and to the kernel within ``cpu_parity_levels()`` of the installed OpenCV. pycuda is
imported only when a ``CudaCropper`` is made.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgepose.affine import Affine
from edgepose.card import ModelCard
from edgepose.errors import InputError
from edgepose.preprocess import validate_frame

KERNEL_SOURCE = r"""
#include <cuda_fp16.h>

__device__ __forceinline__ void store(float* out, size_t i, float v) { out[i] = v; }
__device__ __forceinline__ void store(__half* out, size_t i, float v) { out[i] = __float2half_rn(v); }

// One thread per output pixel (n, y, x): inverse-affine sample of the BGR uint8 frame, bilinear with 0 outside,
// rounded to a uint8 level like OpenCV's saturate_cast, then lut[c][level] = (level - mean[c]) / std[c].
template <typename T>
__device__ void crop(const unsigned char* __restrict__ frame, int width, int height,
                     const float* __restrict__ inverse, const float* __restrict__ lut,
                     int src0, int src1, int src2, T* __restrict__ out, int out_w, int out_h) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    const int n = blockIdx.z;
    if (x >= out_w || y >= out_h) return;
    const float* m = inverse + 6 * n;
    const float sx = m[0] * (float)x + m[1] * (float)y + m[2];
    const float sy = m[3] * (float)x + m[4] * (float)y + m[5];
    float value[3] = {0.0f, 0.0f, 0.0f};
    // Beyond one pixel outside the frame every neighbour is border (0); also keeps the int casts in range.
    if (sx > -1.0f && sy > -1.0f && sx < (float)width && sy < (float)height) {
        const float fx = floorf(sx), fy = floorf(sy);
        const float ax = sx - fx, ay = sy - fy;
        const int x0 = (int)fx, y0 = (int)fy;
        const bool in_x0 = x0 >= 0, in_x1 = x0 + 1 < width, in_y0 = y0 >= 0, in_y1 = y0 + 1 < height;
        const size_t row0 = (size_t)y0 * width, row1 = row0 + width;
        for (int c = 0; c < 3; ++c) {
            const float v00 = (in_y0 && in_x0) ? (float)frame[(row0 + x0) * 3 + c] : 0.0f;
            const float v01 = (in_y0 && in_x1) ? (float)frame[(row0 + x0 + 1) * 3 + c] : 0.0f;
            const float v10 = (in_y1 && in_x0) ? (float)frame[(row1 + x0) * 3 + c] : 0.0f;
            const float v11 = (in_y1 && in_x1) ? (float)frame[(row1 + x0 + 1) * 3 + c] : 0.0f;
            value[c] = (v00 * (1.0f - ax) + v01 * ax) * (1.0f - ay) + (v10 * (1.0f - ax) + v11 * ax) * ay;
        }
    }
    const int src[3] = {src0, src1, src2};
    const size_t plane = (size_t)out_w * out_h;
    const size_t base = (size_t)n * 3 * plane + (size_t)y * out_w + x;
    for (int c = 0; c < 3; ++c) {
        const int level = min(max(__float2int_rn(value[src[c]]), 0), 255);
        store(out, base + c * plane, lut[c * 256 + level]);
    }
}

extern "C" __global__ void crop_f32(const unsigned char* frame, int width, int height, const float* inverse,
                                    const float* lut, int src0, int src1, int src2, float* out, int out_w, int out_h) {
    crop<float>(frame, width, height, inverse, lut, src0, src1, src2, out, out_w, out_h);
}

extern "C" __global__ void crop_f16(const unsigned char* frame, int width, int height, const float* inverse,
                                    const float* lut, int src0, int src1, int src2, __half* out, int out_w, int out_h) {
    crop<__half>(frame, width, height, inverse, lut, src0, src1, src2, out, out_w, out_h);
}
"""
KERNELS = {np.dtype(np.float32): "crop_f32", np.dtype(np.float16): "crop_f16"}
BLOCK = (32, 8, 1)
OPENCV_FLOAT_WARP = (4, 11)  # the first OpenCV whose uint8 warpAffine is floating point
# OpenCV < 4.11 rounds each source coordinate to 1/32 px: off by <= 1/64 + 1/1024 px per axis (the 1/1024 from its
# intermediate rounding), and a bilinear sample changes by <= 255 levels per px per axis, so 255 * 2 * 0.0166 = 8.5
# levels, plus the two roundings to a uint8 level: <= 9 (measured worst: 8 on a checkerboard, 7 on noise).
FIXED_POINT_LEVELS = 9.0


def opencv_float_warp(version: str | None = None) -> bool:
    """True when OpenCV ``version`` (default: the installed cv2) warps uint8 images in floating point (>= 4.11)."""
    if version is None:
        import cv2

        version = cv2.__version__
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    return parts >= OPENCV_FLOAT_WARP


def cpu_parity_levels(version: str | None = None) -> float:
    """Most grey levels a ``CudaCropper`` crop can differ from ``Cropper``'s with OpenCV ``version`` (installed by
    default): 1 on OpenCV >= 4.11 (a rounding tie, in a tiny share of pixels), 9 on the fixed-point warp before."""
    return 1.0 if opencv_float_warp(version) else FIXED_POINT_LEVELS


def channel_tables(card: ModelCard) -> tuple[tuple[int, int, int], np.ndarray]:
    """Per output channel, the BGR frame channel it reads and the (3, 256) float32 table level -> (v - mean) / std.

    The same numbers ``Cropper`` builds (float64 arithmetic, rounded once to float32).
    """
    source = (2, 1, 0) if card.color == "rgb" else (0, 1, 2)
    levels = np.arange(256, dtype=np.float64)
    tables = np.stack([(levels - m) / s for m, s in zip(card.mean, card.std, strict=True)]).astype(np.float32)
    return source, tables


def bilinear_zero_border(frame: np.ndarray, sx: np.ndarray, sy: np.ndarray) -> np.ndarray:
    """Sample an (H, W, C) image at float coordinates (any shape S): bilinear, 0 outside; returns (*S, C) float64."""
    height, width = frame.shape[:2]
    x0, y0 = np.floor(sx), np.floor(sy)
    ax, ay = (sx - x0)[..., None], (sy - y0)[..., None]
    x0 = np.clip(x0, -2, width + 1).astype(np.int64)  # far-outside points read the border like near ones
    y0 = np.clip(y0, -2, height + 1).astype(np.int64)

    def texel(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        inside = (xx >= 0) & (xx < width) & (yy >= 0) & (yy < height)
        values = frame[np.clip(yy, 0, height - 1), np.clip(xx, 0, width - 1)].astype(np.float64)
        return values * inside[..., None]

    top = texel(y0, x0) * (1 - ax) + texel(y0, x0 + 1) * ax
    bottom = texel(y0 + 1, x0) * (1 - ax) + texel(y0 + 1, x0 + 1) * ax
    return top * (1 - ay) + bottom * ay


def reference_crop(frame: np.ndarray, affine: Affine, card: ModelCard, quantize: bool = True) -> np.ndarray:
    """The (N, 3, H, W) float32 model batch, computed the slow obvious way (float64 numpy, no OpenCV).

    Crop pixel (x, y) of box n samples the frame at ``affine.inverse()`` of (x, y) (pixel centres), bilinearly with
    0 outside the frame; with ``quantize`` the sample is rounded half-to-even to a 0..255 level as OpenCV's uint8
    warp does (without, the exact float sample is normalised). Then colour order and ``(v - mean) / std``.
    """
    frame = validate_frame(frame)
    source, tables = channel_tables(card)
    width, height = card.input_size
    inverse = affine.inverse().matrices
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    out = np.empty((len(affine), 3, height, width), np.float32)
    for n, m in enumerate(inverse):
        sx = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
        sy = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
        sample = bilinear_zero_border(frame, sx, sy)
        for c, src in enumerate(source):
            if quantize:
                out[n, c] = tables[c][np.clip(np.rint(sample[..., src]), 0, 255).astype(np.int64)]
            else:
                out[n, c] = (sample[..., src] - card.mean[c]) / card.std[c]
    return out


class CudaCropper:
    """Crops boxes on the GPU into a device batch (N, 3, H, W) in the model's dtype (float32 or float16).

    ``max_batch`` sizes the output buffer (more boxes raise InputError). ``context``/``stream``: see
    ``edgepose.cuda.session`` (default: the device's primary context and a new stream). Work is queued on the
    stream and not waited for: a consumer on another stream must call ``synchronize()`` first (or share the
    stream, e.g. ``TensorRTBackend(path, context=cropper.context, stream=cropper.stream)``).
    ``cpu_parity_levels``: how far (grey levels) its crops can be from ``Cropper``'s with the installed OpenCV.
    """

    def __init__(self, card: ModelCard, max_batch: int, stream: Any = None, context: Any = None,
                 dtype: np.dtype | type = np.float32, device: int = 0) -> None:
        from edgepose.cuda.session import CudaSession

        self.dtype = np.dtype(dtype)
        if self.dtype not in KERNELS:
            raise InputError(f"CudaCropper writes float32 or float16, not {self.dtype}")
        if int(max_batch) < 1:
            raise InputError(f"max_batch must be at least 1, got {max_batch}")
        self.card, self.max_batch = card, int(max_batch)
        self.size = card.input_size
        self.udp = card.codec == "udp"
        self.padding = card.bbox_padding
        self.source, tables = channel_tables(card)
        self.cpu_parity_levels = cpu_parity_levels()
        self.session = CudaSession("The CUDA crop", context, stream, device)
        self.context, self.stream = self.session.context, self.session.stream
        self._out = self._lut = self._inverse = self._frame = self._frame_host = self._staged = None
        self._frame_bytes, self._last = 0, None  # _last: (pointer, n) of the latest batch
        try:
            self._setup(tables)
        except BaseException:
            self.close()  # nvcc missing, out of memory: free what was made and release the context
            raise

    def _setup(self, tables: np.ndarray) -> None:
        width, height = self.size
        self._kernel = self.session.compile(KERNEL_SOURCE, (KERNELS[self.dtype],))[KERNELS[self.dtype]]
        self._out = self.session.alloc(self.max_batch * 3 * height * width * self.dtype.itemsize)
        self._lut = self.session.alloc(tables.nbytes)
        self._inverse = self.session.alloc(self.max_batch * 6 * 4)
        self._inverse_host = self.session.pinned(self.max_batch * 6, np.float32)
        cuda = self.session.cuda
        with self.session, _checked("LUT upload"):
            cuda.memcpy_htod(self._lut, tables)
            self._staged = cuda.Event()  # host staging buffers are free once this event has passed
            self._staged.record(self.stream)

    def affine(self, boxes: np.ndarray) -> Affine:
        """The crop transforms for (N, 4) xyxy boxes (same as ``Cropper.affine``)."""
        return Affine.from_boxes(boxes, self.size, self.padding, udp=self.udp)

    def __call__(self, frame: np.ndarray, boxes: np.ndarray, out: Any = None) -> tuple[Any, Affine]:
        """Crop (N, 4) xyxy boxes from a BGR frame: the device batch (a pycuda GPUArray) and its Affine."""
        affine = self.affine(boxes)
        return self.warp(frame, affine, out), affine

    def warp(self, frame: np.ndarray, affine: Affine, out: Any = None) -> Any:
        """Queue the crops ``affine`` defines; returns a GPUArray (N, 3, H, W) over the output buffer.

        ``out`` (a device pointer, pycuda allocation or GPUArray) writes there instead, e.g. straight into a
        TensorRT engine's input buffer; it must hold N * 3 * H * W values of this cropper's dtype. The returned
        array (and ``out``) is overwritten by the next call. pycuda methods of the array (``.get()``) need the
        context current (``with cropper.session:``); ``to_host()`` does that itself.
        """
        from pycuda import gpuarray

        from edgepose.cuda.session import device_pointer

        frame = np.ascontiguousarray(validate_frame(frame))
        n = len(affine)
        if n > self.max_batch:
            raise InputError(f"{n} boxes exceed this CudaCropper's max_batch {self.max_batch}; make it larger")
        width, height = self.size
        target = device_pointer(out) if out is not None else int(self._out)
        if n:
            inverse = affine.inverse().matrices.reshape(n, 6).astype(np.float32)
            self._launch(frame, inverse, target)
        self._last = (target, n)
        with self.session, _checked("GPUArray view"):  # pycuda's GPUArray asks the current context for its device
            return gpuarray.GPUArray((n, 3, height, width), self.dtype, gpudata=target)

    def _launch(self, frame: np.ndarray, inverse: np.ndarray, target: int) -> None:
        cuda = self.session.cuda
        width, height = self.size
        with self.session, _checked("crop (upload, kernel launch)"):
            self._staged.synchronize()  # the previous call's async copies have read the staging buffers
            self._ensure_frame(frame.nbytes)
            staged = self._frame_host[: frame.nbytes]
            np.copyto(staged, frame.reshape(-1))
            cuda.memcpy_htod_async(self._frame, staged, self.stream)
            self._inverse_host[: inverse.size] = inverse.reshape(-1)
            cuda.memcpy_htod_async(self._inverse, self._inverse_host[: inverse.size], self.stream)
            self._staged.record(self.stream)
            grid = ((width + BLOCK[0] - 1) // BLOCK[0], (height + BLOCK[1] - 1) // BLOCK[1], len(inverse))
            i32 = np.int32
            self._kernel(self._frame, i32(frame.shape[1]), i32(frame.shape[0]), self._inverse, self._lut,
                         i32(self.source[0]), i32(self.source[1]), i32(self.source[2]), np.intp(target),
                         i32(width), i32(height), block=BLOCK, grid=grid, stream=self.stream)

    def _ensure_frame(self, nbytes: int) -> None:
        if nbytes > self._frame_bytes:  # grow (never shrink) the device frame and its pinned staging copy
            if self._frame is not None:
                self.stream.synchronize()  # the previous kernel may still read the old frame
                self._frame.free()
            self._frame = self.session.cuda.mem_alloc(nbytes)
            self._frame_host = self.session.cuda.pagelocked_empty(nbytes, np.uint8)
            self._frame_bytes = nbytes

    def synchronize(self) -> None:
        """Wait until the queued crops are written."""
        self.session.synchronize()

    def to_host(self) -> np.ndarray:
        """The latest batch copied to the host as (N, 3, H, W) (waits for the GPU); for tests and debugging."""
        if self._last is None:
            raise InputError("CudaCropper.to_host: nothing cropped yet")
        target, n = self._last
        width, height = self.size
        host = np.empty((n, 3, height, width), self.dtype)
        if n:
            with self.session, _checked("download of the crop batch"):
                self.stream.synchronize()  # then a plain copy: an async one would need page-locked memory
                self.session.cuda.memcpy_dtoh(host, target)
        return host

    def close(self) -> None:
        """Free the device buffers and release the context if this cropper retained it."""
        if self.session.context is None:
            return
        with self.session, _checked("free"):
            self.stream.synchronize()
            for buffer in (self._out, self._lut, self._inverse, self._frame):
                if buffer is not None:
                    buffer.free()
            self._frame = self._frame_host = self._inverse_host = self._staged = None
        self.session.close()

    def __enter__(self) -> CudaCropper:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _checked(what: str):
    from edgepose.cuda.session import checked

    return checked(what)
