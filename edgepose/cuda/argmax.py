"""Optional GPU argmax over heatmaps already on the device: (N, K, h, w) -> (N, K, 3) [x, y, maxval] on the host.

Only N*K*3 floats cross the bus instead of whole heatmaps. The result is what the codecs' ``argmax_2d`` computes:
the *first* maximum in row-major order (lowest flat index on ties, as ``np.argmax``), x = index % w,
y = index // w. A NaN counts as larger than any number (np.argmax's rule), though the codecs refuse NaN outputs.
Sub-pixel refinement (shift, DARK) stays on the CPU; it reads only a few pixels around each maximum.
pycuda is imported only when a ``GpuArgmax`` is made.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgepose.errors import InputError

KERNEL_SOURCE = r"""
#include <cuda_fp16.h>

__device__ __forceinline__ float load(const float* p, size_t i) { return p[i]; }
__device__ __forceinline__ float load(const __half* p, size_t i) { return __half2float(p[i]); }

// (a, ia) comes before (b, ib): larger value, NaN largest, lower index on ties.
__device__ __forceinline__ bool before(float a, int ia, float b, int ib) {
    const bool na = isnan(a), nb = isnan(b);
    if (na || nb) return na && (!nb || ia < ib);
    return a > b || (a == b && ia < ib);
}

// One block per (n, k) map: each thread scans a strided share, then a shared-memory tree reduction.
template <typename T>
__device__ void argmax(const T* __restrict__ maps, int size, int width, float* __restrict__ out) {
    extern __shared__ unsigned char shared[];
    float* values = (float*)shared;
    int* indices = (int*)(values + blockDim.x);
    const T* map = maps + (size_t)blockIdx.x * size;
    float best = 0.0f;
    int best_index = -1;
    for (int i = threadIdx.x; i < size; i += blockDim.x) {
        const float v = load(map, i);
        if (best_index < 0 || before(v, i, best, best_index)) { best = v; best_index = i; }
    }
    values[threadIdx.x] = best;
    indices[threadIdx.x] = best_index;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (threadIdx.x < stride) {
            const int j = threadIdx.x + stride;
            const bool take = indices[j] >= 0 &&
                (indices[threadIdx.x] < 0 || before(values[j], indices[j], values[threadIdx.x], indices[threadIdx.x]));
            if (take) { values[threadIdx.x] = values[j]; indices[threadIdx.x] = indices[j]; }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        const int index = indices[0];
        out[3 * blockIdx.x + 0] = (float)(index % width);
        out[3 * blockIdx.x + 1] = (float)(index / width);
        out[3 * blockIdx.x + 2] = values[0];
    }
}

extern "C" __global__ void argmax_f32(const float* maps, int size, int width, float* out) {
    argmax<float>(maps, size, width, out);
}

extern "C" __global__ void argmax_f16(const __half* maps, int size, int width, float* out) {
    argmax<__half>(maps, size, width, out);
}
"""
KERNELS = {np.dtype(np.float32): "argmax_f32", np.dtype(np.float16): "argmax_f16"}
THREADS = 256  # a power of two (the tree reduction halves it)


def argmax_reference(heatmaps: np.ndarray) -> np.ndarray:
    """(N, K, h, w) -> (N, K, 3) float32 [x, y, maxval] of each map's first maximum (numpy, the slow obvious way)."""
    maps = np.asarray(heatmaps)
    if maps.ndim != 4 or maps.shape[2] < 1 or maps.shape[3] < 1:
        raise InputError(f"heatmaps must have shape (N, K, h, w), got {maps.shape}")
    n, k, h, w = maps.shape
    flat = maps.reshape(n, k, h * w)
    index = np.argmax(flat, axis=2)
    value = np.take_along_axis(flat, index[..., None], axis=2)[..., 0]
    return np.stack([index % w, index // w, value], axis=2).astype(np.float32)


def _device_view(heatmaps: Any) -> tuple[int, tuple[int, ...], np.dtype]:
    """(pointer, shape, dtype) of a C-contiguous device array given by the CUDA array interface."""
    interface = heatmaps.__cuda_array_interface__
    shape = tuple(int(d) for d in interface["shape"])
    dtype = np.dtype(interface["typestr"])
    strides = interface.get("strides")
    if strides is not None:
        expected = tuple(int(np.prod(shape[i + 1:], dtype=np.int64)) * dtype.itemsize for i in range(len(shape)))
        if tuple(strides) != expected:
            raise InputError("GpuArgmax needs C-contiguous heatmaps (call .contiguous() first)")
    return int(interface["data"][0]), shape, dtype


class GpuArgmax:
    """Per-map argmax on the GPU; ``context``/``stream`` as in ``edgepose.cuda.session`` (defaults: primary, new).

    ``gpu_argmax(heatmaps)`` takes a device array (anything with ``__cuda_array_interface__``: a pycuda GPUArray,
    a torch CUDA tensor, a CuPy array) or a numpy array (uploaded first, for tests). Work runs on this object's
    stream: a producer on another stream must be synchronized first.
    """

    def __init__(self, context: Any = None, stream: Any = None, device: int = 0) -> None:
        from edgepose.cuda.session import CudaSession

        self.session = CudaSession("The GPU argmax", context, stream, device)
        self.context, self.stream = self.session.context, self.session.stream
        self._out, self._out_count = None, 0
        self._upload, self._upload_bytes = None, 0
        self._staging: dict[str, np.ndarray] = {}  # page-locked host buffers for the async copies, by use
        try:
            self._kernels = self.session.compile(KERNEL_SOURCE, tuple(KERNELS.values()))
        except BaseException:
            self.close()  # nvcc missing: release the context
            raise

    def __call__(self, heatmaps: Any) -> np.ndarray:
        """(N, K, h, w) float32/float16 heatmaps on the device (or host) -> (N, K, 3) float32 [x, y, maxval]."""
        from edgepose.cuda.session import checked

        host = heatmaps if isinstance(heatmaps, np.ndarray) else None
        if host is not None:
            host = np.ascontiguousarray(host)
            shape, dtype = host.shape, host.dtype
        else:
            pointer, shape, dtype = _device_view(heatmaps)
        if len(shape) != 4 or shape[2] < 1 or shape[3] < 1:
            raise InputError(f"heatmaps must have shape (N, K, h, w), got {tuple(shape)}")
        if dtype not in KERNELS:
            raise InputError(f"GpuArgmax reads float32 or float16 heatmaps, got {dtype}")
        n, k, h, w = shape
        maps = n * k
        if maps == 0:
            return np.zeros((n, k, 3), np.float32)
        cuda = self.session.cuda
        with self.session, checked("argmax (upload, kernel launch, download)"):
            if host is not None:  # async copies need page-locked host memory: stage the maps there
                pointer = int(self._ensure_upload(host.nbytes))
                staged = self._pinned("upload", host.nbytes, np.uint8)
                np.copyto(staged, host.reshape(-1).view(np.uint8))
                cuda.memcpy_htod_async(pointer, staged, self.stream)
            out = self._ensure_out(maps)
            self._kernels[KERNELS[dtype]](np.intp(pointer), np.int32(h * w), np.int32(w), out, block=(THREADS, 1, 1),
                                          grid=(maps, 1), shared=THREADS * 8, stream=self.stream)
            result = self._pinned("result", maps * 3, np.float32)
            cuda.memcpy_dtoh_async(result, out, self.stream)
            self.stream.synchronize()
        return result.reshape(n, k, 3).copy()

    def _pinned(self, use: str, count: int, dtype) -> np.ndarray:
        """The first ``count`` elements of the page-locked buffer for ``use`` (grown, never shrunk)."""
        held = self._staging.get(use)
        if held is None or held.size < count:
            held = self._staging[use] = self.session.cuda.pagelocked_empty(max(count, 1), dtype)
        return held[:count]

    def _ensure_out(self, maps: int):
        if maps > self._out_count:
            if self._out is not None:
                self._out.free()
            self._out, self._out_count = self.session.cuda.mem_alloc(maps * 3 * 4), maps
        return self._out

    def _ensure_upload(self, nbytes: int):
        if nbytes > self._upload_bytes:
            if self._upload is not None:
                self._upload.free()
            self._upload, self._upload_bytes = self.session.cuda.mem_alloc(nbytes), nbytes
        return self._upload

    def close(self) -> None:
        """Free the buffers and release the context if this object retained it."""
        if self.session.context is None:
            return
        from edgepose.cuda.session import checked

        with self.session, checked("free"):
            for buffer in (self._out, self._upload):
                if buffer is not None:
                    buffer.free()
            self._out = self._upload = None
            self._staging = {}
        self.session.close()

    def __enter__(self) -> GpuArgmax:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
