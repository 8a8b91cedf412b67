"""Run the runtime's CUDA C kernels on the CPU: the kernel source compiled by g++ with a small shim (CUDA keywords,
``__half`` as ``_Float16``, ``__syncthreads`` as a barrier) and a loop over the launch grid, loaded with ctypes.

This checks the kernels' *formulas* (sampling, rounding, LUT, channel order, NCHW indexing, tie-breaking,
reduction) where there is no GPU; whether they compile for and run on a device is the GPU tests' job.
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


# ------------------------------------------------------------------ a stand-in pycuda over host memory (for tests)


class _Allocation:
    """Host bytes standing in for device memory; ``int()`` is their address, as for a pycuda allocation."""

    def __init__(self, nbytes: int) -> None:
        self.buffer = np.zeros(max(int(nbytes), 1), np.uint8)

    def __int__(self) -> int:
        return self.buffer.ctypes.data

    def free(self) -> None:
        self.buffer = None


def _copy(dst: int, src: int, nbytes: int) -> None:
    ctypes.memmove(dst, src, nbytes)


def fake_pycuda(lib: ctypes.CDLL) -> dict[str, object]:
    """``sys.modules`` entries for a pycuda whose driver calls act on host memory and whose kernels run through
    ``lib`` (``build``). It checks the GPU classes' own logic (buffers, sizes, pointers, launch geometry, dtypes)
    on the CPU, not pycuda itself."""
    import types

    driver = types.ModuleType("pycuda.driver")
    driver.init = lambda: None
    driver.Error = type("Error", (Exception,), {"__module__": "pycuda._driver"})

    class Context:
        stack: list = []

        def push(self) -> None:
            Context.stack.append(self)

        @staticmethod
        def pop() -> None:
            Context.stack.pop()

        def detach(self) -> None:
            pass

    class Device:
        def __init__(self, index: int) -> None:
            self.index = index

        @staticmethod
        def count() -> int:
            return 1

        def retain_primary_context(self) -> Context:
            return Context()

    class Stream:
        handle = 1

        def synchronize(self) -> None:
            pass

    class Event:
        def record(self, stream=None) -> None:
            pass

        def synchronize(self) -> None:
            pass

    def htod(dst, src, stream=None) -> None:
        assert Context.stack, "a CUDA call outside a pushed context"
        _copy(int(dst), src.ctypes.data, src.nbytes)

    def dtoh(dst, src, stream=None) -> None:
        assert Context.stack, "a CUDA call outside a pushed context"
        _copy(dst.ctypes.data, int(src), dst.nbytes)

    driver.Context, driver.Device, driver.Stream, driver.Event = Context, Device, Stream, Event
    driver.mem_alloc = _Allocation
    driver.pagelocked_empty = lambda shape, dtype: np.empty(shape, dtype)
    driver.memcpy_htod = driver.memcpy_htod_async = htod
    driver.memcpy_dtoh = driver.memcpy_dtoh_async = dtoh

    def kernel(name: str):
        def launch(*args, block, grid, stream=None, shared=0) -> None:
            assert Context.stack, "a kernel launch outside a pushed context"
            a = [int(v) for v in args]
            p = ctypes.c_void_p
            if name.startswith("crop"):
                frame, w, h, inv, lut, s0, s1, s2, out, ow, oh = a
                assert block == (32, 8, 1) and grid == ((ow + 31) // 32, (oh + 7) // 8, grid[2])
                getattr(lib, f"run_{name}")(p(frame), w, h, p(inv), p(lut), s0, s1, s2, p(out), ow, oh, grid[2])
            else:
                maps, size, width, out = a
                assert shared >= block[0] * 8
                getattr(lib, f"run_{name}")(p(maps), grid[0], size, width, p(out), block[0])
        return launch

    compiler = types.ModuleType("pycuda.compiler")
    compiler.SourceModule = lambda source, **kw: types.SimpleNamespace(get_function=kernel)

    gpuarray = types.ModuleType("pycuda.gpuarray")

    class GPUArray:
        def __init__(self, shape, dtype, gpudata=None) -> None:
            assert Context.stack, "pycuda's GPUArray needs a current context (it calls Context.get_device())"
            self.shape, self.dtype = tuple(shape), np.dtype(dtype)
            self.gpudata = gpudata if gpudata is not None else _Allocation(int(np.prod(shape)) * self.dtype.itemsize)

        @property
        def __cuda_array_interface__(self) -> dict:
            return {"shape": self.shape, "typestr": self.dtype.str, "data": (int(self.gpudata), False),
                    "strides": None, "version": 3}

        def get(self) -> np.ndarray:
            assert Context.stack, "GPUArray.get() outside a pushed context"
            out = np.empty(self.shape, self.dtype)
            _copy(out.ctypes.data, int(self.gpudata), out.nbytes)
            return out

    def to_gpu(array: np.ndarray) -> GPUArray:
        out = GPUArray(array.shape, array.dtype)
        _copy(int(out.gpudata), np.ascontiguousarray(array).ctypes.data, array.nbytes)
        return out

    gpuarray.GPUArray, gpuarray.to_gpu = GPUArray, to_gpu
    package = types.ModuleType("pycuda")
    package.driver, package.compiler, package.gpuarray = driver, compiler, gpuarray
    return {"pycuda": package, "pycuda.driver": driver, "pycuda.compiler": compiler, "pycuda.gpuarray": gpuarray}


def fake_tensorrt(version: str = "10.3.0"):
    """A ``tensorrt`` stand-in whose engines are the bytes ``FAKE-ENGINE <min> <max>`` (or ``<fixed> fixed``): one
    input ``input`` (N, 3, 8, 6) float32 and one output ``heatmaps`` (N, 2, 4, 3) = 2x2 mean pool of channels 0-1,
    read from and written to the bound addresses. Checks TensorRTBackend's logic (profiles, chunks, padding, binding,
    copies), not TensorRT."""
    import types

    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.Logger = type("Logger", (), {"ERROR": 1, "__init__": lambda self, level=1: None})
    trt.TensorIOMode = types.SimpleNamespace(INPUT="in", OUTPUT="out")
    trt.nptype = lambda dtype: {"float": np.float32}[dtype]
    shapes = {"input": (3, 8, 6), "heatmaps": (2, 4, 3)}

    def model(x: np.ndarray) -> np.ndarray:
        return x[:, :2].reshape(len(x), 2, 4, 2, 3, 2).mean(axis=(3, 5))

    class Context:
        def __init__(self, engine) -> None:
            self.engine, self.batch, self.addresses = engine, None, {}

        def set_input_shape(self, name: str, shape) -> bool:
            shape = tuple(shape)
            ok = shape[1:] == shapes["input"] and self.engine.low <= shape[0] <= self.engine.high
            self.batch = shape[0] if ok else self.batch
            return ok

        def get_tensor_shape(self, name: str) -> tuple:
            return (self.batch, *shapes[name])

        def set_tensor_address(self, name: str, address: int) -> bool:
            self.addresses[name] = int(address)
            return True

        def execute_async_v3(self, stream: int) -> bool:
            x = np.empty((self.batch, *shapes["input"]), np.float32)
            _copy(x.ctypes.data, self.addresses["input"], x.nbytes)
            y = np.ascontiguousarray(model(x), np.float32)
            _copy(self.addresses["heatmaps"], y.ctypes.data, y.nbytes)
            self.engine.runs.append(self.batch)
            return True

    class Engine:
        num_io_tensors = 2

        def __init__(self, low: int, high: int, fixed: bool) -> None:
            self.low, self.high, self.fixed, self.runs = low, high, fixed, []

        def get_tensor_name(self, i: int) -> str:
            return ("input", "heatmaps")[i]

        def get_tensor_mode(self, name: str) -> str:
            return "in" if name == "input" else "out"

        def get_tensor_dtype(self, name: str) -> str:
            return "float"

        def get_tensor_shape(self, name: str) -> tuple:
            return (self.low if self.fixed else -1, *shapes[name])

        def get_tensor_profile_shape(self, name: str, profile: int) -> list:
            return [(b, *shapes[name]) for b in (self.low, self.high, self.high)]

        def create_execution_context(self) -> Context:
            return Context(self)

    class Runtime:
        def __init__(self, logger) -> None:
            pass

        def deserialize_cuda_engine(self, data: bytes):
            words = data.split()
            if len(words) != 3 or words[0] != b"FAKE-ENGINE":
                return None
            if words[2] == b"fixed":
                return Engine(int(words[1]), int(words[1]), True)
            return Engine(int(words[1]), int(words[2]), False)

    trt.Runtime = Runtime
    return trt
