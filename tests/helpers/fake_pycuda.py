"""Host-memory stand-ins for pycuda and TensorRT's runtime API, as strict as the real ones where edgepose relies on
them. Kernels run through the g++ build of their real source (tests.helpers.cuda_emulation.build).

Mirrored behaviour, with the source each rule follows (pycuda: inducer/pycuda; TensorRT: NvInferRuntime.h):

- Kernel arguments (pycuda/driver.py ``_build_arg_buf``): numpy scalars are packed by their dtype, allocations /
  CUDA-array-interface / ``.gpudata`` objects as pointers, anything else (a Python int) raises
  ``TypeError("invalid type on parameter #i (0-based)")``. Here the packed types must also match the kernel's C
  signature (a numpy int64 where the kernel takes ``int`` would shift every later argument on a real GPU).
- Contexts (src/cpp/cuda.hpp ``context::detach``, ``context::pop``, ``context_push``, ``primary_context``): pycuda
  keeps its own stack beside CUDA's. ``push`` pops CUDA's top first when pycuda's stack is not empty; ``pop`` pops
  CUDA's top and re-pushes the next one. ``detach`` of a context that is not pycuda's current one, on its own
  thread, does ``cuCtxPushCurrent`` then the release, and for a primary context the release is
  ``cuDevicePrimaryCtxRelease``, which never pops (CUDA driver API docs: "unlike cuCtxDestroy() this method does not
  pop the context from stack in any circumstances"): the context stays current. ``fake_libcuda`` stands in for
  ``libcuda``'s ``cuCtxPopCurrent_v2``.
- Async copies (pycuda docs, ``memcpy_htod_async``/``memcpy_dtoh_async``: "src/dest must be page-locked memory, see
  pagelocked_empty"): a pageable host array raises ``LogicError`` here (a real driver silently falls back to a
  staged, synchronous copy).
- ``SourceModule`` (pycuda/compiler.py ``compile_plain`` -> ``preprocess_source`` -> pytools.prefork
  ``call_capture_output``): without ``nvcc`` on PATH, ``pytools.prefork.ExecError`` ("error invoking 'nvcc ...'").
- Device allocations are 256-byte aligned (CUDA programming guide: memory returned by the driver/runtime allocation
  routines is aligned to at least 256 bytes).
- ``IExecutionContext::setTensorAddress``: "The pointer must have at least 256-byte alignment" (false otherwise);
  ``enqueueV3`` fails unless every input shape and every I/O tensor address has been set
  (``allInputDimensionsSpecified``; an address "defaults to nullptr").
"""

from __future__ import annotations

import ctypes
import shutil
import threading
import types

import numpy as np

ALIGNMENT = 256
CUDA_ERROR_INVALID_CONTEXT = 201
SIGNATURES = {"crop": "PiiPPiiiPii", "argmax": "PiiP"}  # the kernels' C parameter lists: P pointer, i int


class _Allocation:
    """Device memory stand-in: 256-byte aligned host bytes; ``int()`` is the address, as for pycuda's."""

    def __init__(self, nbytes: int) -> None:
        size = max(int(nbytes), 1)
        raw = np.zeros(size + ALIGNMENT, np.uint8)
        offset = -raw.ctypes.data % ALIGNMENT
        self.buffer = raw[offset:offset + size]

    def __int__(self) -> int:
        return self.buffer.ctypes.data

    def free(self) -> None:
        self.buffer = None


def _copy(dst: int, src: int, nbytes: int) -> None:
    ctypes.memmove(dst, src, nbytes)


def _packed(arg, index: int) -> tuple[str, int]:
    """(type code, value) as pycuda's ``_build_arg_buf`` would pack ``arg``; TypeError where it raises."""
    if isinstance(arg, np.number):
        kind = "f" if arg.dtype.kind == "f" else ("i" if arg.dtype.itemsize == 4 else "P")
        return kind + ("" if arg.dtype.itemsize in (4, 8) else "?"), int(arg)
    if isinstance(arg, _Allocation):
        return "P", int(arg)
    if isinstance(arg, np.ndarray):
        return f"{arg.nbytes}s", 0  # pycuda passes the array's bytes by value
    interface = getattr(arg, "__cuda_array_interface__", None)
    if interface:
        return "P", int(interface["data"][0])
    if hasattr(arg, "gpudata"):
        return "P", int(arg.gpudata)
    raise TypeError(f"invalid type on parameter #{index} (0-based)")


class _State:
    """CUDA's context stack (handles), pycuda's (wrappers), primary retain counts and page-locked ranges."""

    def __init__(self) -> None:
        self.driver_stack: list[str] = []
        self.pycuda_stack: list = []
        self.retained: dict[int, int] = {}
        self.pinned: list[tuple[int, int, np.ndarray]] = []

    def current(self, skip=None):
        """pycuda's ``context::current_context(except)``: drop invalid (or ``skip``) wrappers from the top."""
        while self.pycuda_stack:
            top = self.pycuda_stack[-1]
            if top is not skip and top.valid:
                return top
            self.pycuda_stack.pop()
        return None

    def is_pinned(self, array) -> bool:
        if not isinstance(array, np.ndarray):
            return False
        start = array.ctypes.data
        return any(lo <= start and start + array.nbytes <= hi for lo, hi, _ in self.pinned)


def fake_pycuda(lib: ctypes.CDLL) -> dict[str, object]:
    """``sys.modules`` entries for a strict pycuda over host memory; ``["pycuda.driver"].state`` is its _State and
    ``["pycuda.driver"].libcuda`` its ``libcuda`` (for ``edgepose.cuda.session``'s raw context pop)."""
    state = _State()
    driver = types.ModuleType("pycuda.driver")
    driver.state = state
    driver.init = lambda: None
    driver.Error = type("Error", (Exception,), {"__module__": "pycuda._driver"})
    driver.LogicError = type("LogicError", (driver.Error,), {"__module__": "pycuda._driver"})

    def require_current(what: str) -> None:
        if not state.driver_stack:
            raise driver.LogicError(f"{what}: no CUDA context is current")

    class Context:
        def __init__(self, device: int) -> None:
            self.device, self.handle, self.valid = device, f"primary-{device}", True
            self.thread = threading.get_ident()

        def push(self) -> None:  # context_push
            if not self.valid:
                raise driver.LogicError("cannot activate dead context")
            if state.pycuda_stack:
                state.driver_stack.pop()
            state.driver_stack.append(self.handle)
            state.pycuda_stack.append(self)

        @staticmethod
        def pop() -> None:  # context::pop
            if state.pycuda_stack:
                state.driver_stack.pop()
            if state.current() is None:
                raise driver.LogicError("context::pop: cannot pop non-current context")
            state.pycuda_stack.pop()
            top = state.current()
            if top is not None:
                state.driver_stack.append(top.handle)

        def detach(self) -> None:  # context::detach with primary_context::detach_internal
            if not self.valid:
                raise driver.LogicError("context::detach: cannot detach from invalid context")
            active = state.current() is self
            if active or self.thread == threading.get_ident():
                if not active:
                    state.driver_stack.append(self.handle)  # cuCtxPushCurrent
                state.retained[self.device] -= 1  # cuDevicePrimaryCtxRelease: "does not pop the context"
            self.valid = False
            if active:
                top = state.current(skip=self)
                if top is not None:
                    state.driver_stack.append(top.handle)

    class Device:
        def __init__(self, index: int) -> None:
            self.index = index

        @staticmethod
        def count() -> int:
            return 1

        def retain_primary_context(self) -> Context:
            state.retained[self.index] = state.retained.get(self.index, 0) + 1
            return Context(self.index)

    class Stream:
        handle = 1

        def synchronize(self) -> None:
            require_current("cuStreamSynchronize")

    class Event:
        def record(self, stream=None) -> None:
            require_current("cuEventRecord")

        def synchronize(self) -> None:
            pass

    def htod(dst, src, stream=None, pinned=False) -> None:
        require_current("cuMemcpyHtoD")
        if pinned and not state.is_pinned(src):  # pycuda docs, memcpy_htod_async: "src must be page-locked memory"
            raise driver.LogicError("memcpy_htod_async: src must be page-locked memory (pagelocked_empty)")
        _copy(int(dst), src.ctypes.data, src.nbytes)

    def dtoh(dst, src, stream=None, pinned=False) -> None:
        require_current("cuMemcpyDtoH")
        if pinned and not state.is_pinned(dst):  # pycuda docs, memcpy_dtoh_async: "dest must be page-locked memory"
            raise driver.LogicError("memcpy_dtoh_async: dest must be page-locked memory (pagelocked_empty)")
        _copy(dst.ctypes.data, int(src), dst.nbytes)

    def dtod(dst, src, size, stream=None) -> None:
        require_current("cuMemcpyDtoDAsync")
        _copy(int(dst), int(src), int(size))

    def memset_d8(dst, value, size, stream=None) -> None:
        require_current("cuMemsetD8Async")
        ctypes.memset(int(dst), int(value), int(size))

    def pagelocked_empty(shape, dtype):
        require_current("cuMemHostAlloc")
        array = np.empty(shape, dtype)
        state.pinned.append((array.ctypes.data, array.ctypes.data + array.nbytes, array))
        return array

    def mem_alloc(nbytes):
        require_current("cuMemAlloc")
        return _Allocation(nbytes)

    driver.Context, driver.Device, driver.Stream, driver.Event = Context, Device, Stream, Event
    driver.mem_alloc, driver.pagelocked_empty = mem_alloc, pagelocked_empty
    driver.memcpy_htod, driver.memcpy_dtoh = htod, dtoh
    driver.memcpy_htod_async = lambda dst, src, stream=None: htod(dst, src, stream, pinned=True)
    driver.memcpy_dtoh_async = lambda dst, src, stream=None: dtoh(dst, src, stream, pinned=True)
    driver.memcpy_dtod_async, driver.memset_d8_async = dtod, memset_d8
    driver.libcuda = _FakeLibcuda(state)

    def kernel(name: str):
        def launch(*args, block, grid, stream=None, shared=0) -> None:
            require_current("cuLaunchKernel")
            packed = [_packed(a, i) for i, a in enumerate(args)]  # pycuda/driver.py _build_arg_buf
            signature = "".join(code for code, _ in packed)
            want = SIGNATURES[name.split("_")[0]]
            if signature != want:
                raise driver.LogicError(f"{name}: arguments pack as {signature!r}, the kernel takes {want!r}")
            a = [value for _, value in packed]
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

    class SourceModule:
        def __init__(self, source, nvcc="nvcc", **kw) -> None:
            if shutil.which(nvcc) is None:  # compiler.py preprocess_source -> pytools.prefork.call_capture_output
                raise ExecError(f"error invoking '{nvcc} --preprocess kernel.cu': [Errno 2] No such file or "
                                f"directory: '{nvcc}'")
            require_current("cuModuleLoadData")

        @staticmethod
        def get_function(name: str):
            return kernel(name)

    compiler.SourceModule = SourceModule
    gpuarray = _gpuarray(require_current)
    package = types.ModuleType("pycuda")
    package.driver, package.compiler, package.gpuarray = driver, compiler, gpuarray
    return {"pycuda": package, "pycuda.driver": driver, "pycuda.compiler": compiler, "pycuda.gpuarray": gpuarray}


class ExecError(OSError):
    """pytools.prefork.ExecError, raised when a subprocess (nvcc) cannot be started."""


ExecError.__module__ = "pytools.prefork"


class _FakeLibcuda:
    """``ctypes.CDLL("libcuda.so.1")`` stand-in: only ``cuCtxPopCurrent_v2``."""

    def __init__(self, state: _State) -> None:
        self.state = state

    def cuCtxPopCurrent_v2(self, out) -> int:  # noqa: N802 - the driver's name
        if not self.state.driver_stack:
            return CUDA_ERROR_INVALID_CONTEXT
        self.state.driver_stack.pop()
        return 0


def _gpuarray(require_current) -> types.ModuleType:
    gpuarray = types.ModuleType("pycuda.gpuarray")

    class GPUArray:
        def __init__(self, shape, dtype, gpudata=None) -> None:
            require_current("GPUArray (Context.get_device)")
            self.shape, self.dtype = tuple(shape), np.dtype(dtype)
            self.gpudata = gpudata if gpudata is not None else _Allocation(int(np.prod(shape)) * self.dtype.itemsize)

        @property
        def __cuda_array_interface__(self) -> dict:
            return {"shape": self.shape, "typestr": self.dtype.str, "data": (int(self.gpudata), False),
                    "strides": None, "version": 3}

        def get(self) -> np.ndarray:
            require_current("GPUArray.get")
            out = np.empty(self.shape, self.dtype)
            _copy(out.ctypes.data, int(self.gpudata), out.nbytes)
            return out

    def to_gpu(array: np.ndarray) -> GPUArray:
        out = GPUArray(array.shape, array.dtype)
        _copy(int(out.gpudata), np.ascontiguousarray(array).ctypes.data, array.nbytes)
        return out

    gpuarray.GPUArray, gpuarray.to_gpu = GPUArray, to_gpu
    return gpuarray


def fake_tensorrt(version: str = "10.3.0"):
    """A ``tensorrt`` runtime stand-in whose engines are the bytes ``FAKE-ENGINE <min> <max>`` (or ``<fixed> fixed``):
    one input ``input`` (N, 3, 8, 6) float32 and one output ``heatmaps`` (N, 2, 4, 3) = 2x2 mean pool of channels
    0-1, read from and written to the bound addresses. Address alignment and enqueue preconditions as in the module
    docstring; ``engine.runs`` lists the batch of each run."""
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
            self.engine, self.batch, self.addresses, self.errors = engine, None, {}, []

        def set_input_shape(self, name: str, shape) -> bool:
            shape = tuple(shape)
            ok = shape[1:] == shapes["input"] and self.engine.low <= shape[0] <= self.engine.high
            self.batch = shape[0] if ok else self.batch
            return ok

        def get_tensor_shape(self, name: str) -> tuple:
            return (self.batch if self.batch is not None else -1, *shapes[name])

        def set_tensor_address(self, name: str, address: int) -> bool:
            if int(address) % ALIGNMENT:  # NvInferRuntime.h: "The pointer must have at least 256-byte alignment"
                self.errors.append(f"setTensorAddress: {name} at {int(address):#x} is not 256-byte aligned")
                return False
            self.addresses[name] = int(address)
            return True

        def execute_async_v3(self, stream: int) -> bool:
            missing = [n for n in shapes if n not in self.addresses]  # enqueueV3: all shapes and addresses set
            if self.batch is None or missing:
                self.errors.append(f"enqueueV3: input shape set {self.batch is not None}, addresses missing {missing}")
                return False
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


def install(monkeypatch, lib: ctypes.CDLL, bin_dir) -> dict[str, object]:
    """Put a fresh strict pycuda in ``sys.modules``, an ``nvcc`` on PATH (a stub in ``bin_dir``: the kernels run
    through g++) and its ``libcuda`` behind ``edgepose.cuda.session``; returns the modules."""
    import os
    import sys
    from pathlib import Path

    modules = fake_pycuda(lib)
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    stub = Path(bin_dir) / "nvcc"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    import edgepose.cuda.session as session

    monkeypatch.setattr(session, "_libcuda", lambda: modules["pycuda.driver"].libcuda, raising=False)
    return modules
