"""Run the runtime's CUDA C kernels on the CPU: the kernel source compiled by g++ with a small shim (CUDA keywords,
``__half`` as ``_Float16``, ``__syncthreads`` as a barrier) and a loop over the launch grid, loaded with ctypes.

This checks the kernels' *formulas* (sampling, rounding, LUT, channel order, NCHW indexing, tie-breaking,
reduction) where there is no GPU; whether they compile for and run on a device is the GPU tests' job. The strict
stand-ins for pycuda and TensorRT that launch these kernels are in tests.helpers.fake_pycuda.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np

SHIM = r"""
#include <math.h>
#include <cmath>
#include <cstddef>
#include <algorithm>
#include <barrier>
#include <thread>
#include <vector>
using std::max;
using std::min;
using std::isnan;
struct Dim3 { unsigned x = 0, y = 0, z = 0; };
thread_local Dim3 blockIdx, threadIdx;
Dim3 blockDim;
static std::barrier<>* block_barrier = nullptr;
inline void __syncthreads() { if (block_barrier) block_barrier->arrive_and_wait(); }
alignas(16) unsigned char shared[1 << 16];
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__
struct __half { _Float16 v; };
inline __half __float2half_rn(float f) { return __half{(_Float16)f}; }
inline float __half2float(__half h) { return (float)h.v; }
inline int __float2int_rn(float f) { return (int)nearbyintf(f); }  // default rounding: half to even
"""

LAUNCHERS = r"""
template <typename T, typename K>
static void grid_crop(K kernel, const unsigned char* frame, int width, int height, const float* inverse,
                      const float* lut, int s0, int s1, int s2, T* out, int out_w, int out_h, int n) {
    blockDim = {32, 8, 1};
    for (unsigned z = 0; z < (unsigned)n; ++z)
        for (unsigned by = 0; by < (out_h + 7u) / 8; ++by)
            for (unsigned bx = 0; bx < (out_w + 31u) / 32; ++bx)
                for (unsigned ty = 0; ty < 8; ++ty)
                    for (unsigned tx = 0; tx < 32; ++tx) {
                        blockIdx = {bx, by, z};
                        threadIdx = {tx, ty, 0};
                        kernel(frame, width, height, inverse, lut, s0, s1, s2, out, out_w, out_h);
                    }
}

extern "C" void run_crop_f32(const unsigned char* frame, int width, int height, const float* inverse,
                             const float* lut, int s0, int s1, int s2, float* out, int out_w, int out_h, int n) {
    grid_crop(crop_f32, frame, width, height, inverse, lut, s0, s1, s2, out, out_w, out_h, n);
}

extern "C" void run_crop_f16(const unsigned char* frame, int width, int height, const float* inverse,
                             const float* lut, int s0, int s1, int s2, __half* out, int out_w, int out_h, int n) {
    grid_crop(crop_f16, frame, width, height, inverse, lut, s0, s1, s2, out, out_w, out_h, n);
}

template <typename T, typename K>
static void grid_argmax(K kernel, const T* maps, int count, int size, int width, float* out, int threads) {
    blockDim = {(unsigned)threads, 1, 1};
    for (int b = 0; b < count; ++b) {
        std::barrier<> barrier(threads);
        block_barrier = &barrier;
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t)
            pool.emplace_back([=] { blockIdx = {(unsigned)b, 0, 0}; threadIdx = {(unsigned)t, 0, 0};
                                    kernel(maps, size, width, out); });
        for (auto& th : pool) th.join();
        block_barrier = nullptr;
    }
}

extern "C" void run_argmax_f32(const float* maps, int count, int size, int width, float* out, int threads) {
    grid_argmax(argmax_f32, maps, count, size, width, out, threads);
}

extern "C" void run_argmax_f16(const __half* maps, int count, int size, int width, float* out, int threads) {
    grid_argmax(argmax_f16, maps, count, size, width, out, threads);
}
"""


def compiler() -> str | None:
    """g++ if present (C++20 for std::barrier)."""
    return shutil.which("g++")


def build(folder: Path) -> ctypes.CDLL:
    """Compile both kernel sources with the shim into one shared library in ``folder``."""
    from edgepose.cuda.argmax import KERNEL_SOURCE as ARGMAX
    from edgepose.cuda.crop import KERNEL_SOURCE as CROP

    body = "\n".join(src.replace("#include <cuda_fp16.h>", "") for src in (CROP, ARGMAX))
    source = folder / "kernels_on_cpu.cpp"
    source.write_text(SHIM + body + LAUNCHERS)
    library = folder / "kernels_on_cpu.so"
    subprocess.run([compiler() or "g++", "-std=c++20", "-O2", "-shared", "-fPIC", "-pthread", str(source), "-o",
                    str(library)], check=True, capture_output=True, text=True)
    return ctypes.CDLL(str(library))


def _ptr(array: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(array.ctypes.data)


def crop(lib: ctypes.CDLL, frame: np.ndarray, inverse: np.ndarray, tables: np.ndarray, source, size,
         dtype) -> np.ndarray:
    """The crop kernel over the whole grid: (N, 3, H, W) in ``dtype`` (float32 or float16)."""
    width, height = size
    n = len(inverse)
    frame = np.ascontiguousarray(frame)
    inverse = np.ascontiguousarray(inverse.reshape(n, 6), dtype=np.float32)
    tables = np.ascontiguousarray(tables, dtype=np.float32)
    out = np.zeros((n, 3, height, width), dtype)
    run = lib.run_crop_f32 if np.dtype(dtype) == np.float32 else lib.run_crop_f16
    run(_ptr(frame), ctypes.c_int(frame.shape[1]), ctypes.c_int(frame.shape[0]), _ptr(inverse), _ptr(tables),
        *(ctypes.c_int(s) for s in source), _ptr(out), ctypes.c_int(width), ctypes.c_int(height), ctypes.c_int(n))
    return out


def argmax(lib: ctypes.CDLL, maps: np.ndarray, threads: int) -> np.ndarray:
    """The argmax kernel, one block of ``threads`` per map: (N, K, 3) [x, y, maxval]."""
    maps = np.ascontiguousarray(maps)
    n, k, h, w = maps.shape
    out = np.zeros((n * k, 3), np.float32)
    run = lib.run_argmax_f32 if maps.dtype == np.float32 else lib.run_argmax_f16
    run(_ptr(maps), ctypes.c_int(n * k), ctypes.c_int(h * w), ctypes.c_int(w), _ptr(out), ctypes.c_int(threads))
    return out.reshape(n, k, 3)


# ------------------------------------------------------------------ stand-ins for pycuda and TensorRT (for tests)

# The strict host-memory pycuda and TensorRT runtime live in tests.helpers.fake_pycuda (re-exported here).
from tests.helpers.fake_pycuda import fake_pycuda, fake_tensorrt  # noqa: E402, F401
