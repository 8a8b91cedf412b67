"""pycuda plumbing shared by the GPU paths (CUDA crop, GPU argmax, TensorRT): imported lazily, contexts explicit.

``pycuda.autoinit`` is never used. A ``CudaSession`` holds one CUDA context and one stream:

- ``context=None``: the device's *primary* context is retained (``Device(device).retain_primary_context()``) and
  released on ``close()``. The primary context is the one the CUDA runtime API uses, i.e. the one PyTorch, CuPy and
  TensorRT work in, so device buffers made here can be handed to them (``torch.as_tensor`` on a CUDA array
  interface object, ``TensorRTBackend.infer_device``) without copies. A context made with ``make_context()`` would
  be a separate address space those libraries cannot read.
- ``context=ctx``: the caller's context (e.g. from ``cuda.Device(0).make_context()``, popped by the caller after
  making it, or another session's ``.context``); it is pushed around every call here and never released here.

Every method that touches CUDA pushes the context for its duration (``with session:``) and pops it after, so no
context is left current on the caller's thread; ``close()`` restores the thread's context stack too (see there).
Every pycuda call raises on failure; ``checked`` turns that (and pytools' errors from running nvcc) into
``DeviceError`` naming the call. Kernels are compiled at run time by nvcc, which must be on PATH.
"""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import threading
from collections.abc import Iterator
from typing import Any

from edgepose.errors import DeviceError, MissingDependencyError

NVCC_MISSING = ("{feature} compiles its CUDA kernel at run time with nvcc, which is not on PATH: on a Jetson add "
                "/usr/local/cuda/bin to PATH (JetPack installs the CUDA toolkit there), elsewhere install the CUDA "
                "toolkit")


def load_pycuda(feature: str):
    """``pycuda.driver``, or MissingDependencyError saying how to install it."""
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise MissingDependencyError(
            f"{feature} needs pycuda (and a CUDA driver): pip install 'edgepose[tensorrt]' (pycuda builds from "
            f"source against the CUDA toolkit; nvcc must be on PATH). Import failed with: {exc}"
        ) from exc
    return cuda


@contextlib.contextmanager
def checked(what: str) -> Iterator[None]:
    """Re-raise pycuda's errors (driver, launch, compile) as DeviceError naming ``what``."""
    try:
        yield
    except Exception as exc:
        module = type(exc).__module__ or ""
        if module.startswith(("pycuda", "pytools")):  # pytools.prefork.ExecError: nvcc could not be run
            message = " ".join(f"{type(exc).__name__}: {exc}".split())
            raise DeviceError(f"CUDA {what} failed: {message}") from exc
        raise


def _libcuda() -> ctypes.CDLL:
    """The CUDA driver library pycuda is linked against (already loaded in this process)."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    raise DeviceError("cannot load the CUDA driver library (libcuda.so.1) to restore the context stack")


def _pop_driver_context() -> None:
    """``cuCtxPopCurrent``: pop the thread's current context, which pycuda's ``detach`` of a primary context pushed.

    pycuda (src/cpp/cuda.hpp ``context::detach``) pushes a context that is not current before releasing it, and for a
    primary context the release is ``cuDevicePrimaryCtxRelease``, which never pops ("unlike cuCtxDestroy() this
    method does not pop the context from stack in any circumstances", CUDA driver API).
    """
    handle = ctypes.c_void_p()
    status = _libcuda().cuCtxPopCurrent_v2(ctypes.byref(handle))
    if status != 0:
        raise DeviceError(f"CUDA context release failed: cuCtxPopCurrent returned CUDA error {status}")


class CudaSession:
    """One CUDA context (retained primary, or the caller's) and one stream; see the module docstring."""

    def __init__(self, feature: str, context: Any = None, stream: Any = None, device: int = 0) -> None:
        cuda = self.cuda = load_pycuda(feature)
        self.feature = feature
        self._owned = context is None
        self._thread = threading.get_ident()
        self._depth = 0
        self.context = None
        with checked("initialisation (cuInit)"):
            cuda.init()
            if context is None:
                count = cuda.Device.count()
                if device >= count:
                    raise DeviceError(f"{feature} needs CUDA device {device}; this machine has {count} CUDA device(s)")
                context = cuda.Device(device).retain_primary_context()
        self.context = context
        self._modules: list = []  # compiled modules stay alive as long as their kernels may run
        try:
            with self, checked("stream creation"):
                self.stream = stream if stream is not None else cuda.Stream()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> CudaSession:
        with checked("context push"):
            self.context.push()
        self._depth += 1
        return self

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        with checked("context pop"):
            self.cuda.Context.pop()

    def synchronize(self) -> None:
        """Wait for everything queued on this session's stream."""
        with self, checked("stream synchronize"):
            self.stream.synchronize()

    def compile(self, source: str, names: tuple[str, ...]) -> dict[str, Any]:
        """Compile CUDA C ``source`` (nvcc, via pycuda's cache) in this context; the kernels by name."""
        from pycuda.compiler import SourceModule

        if shutil.which("nvcc") is None:
            raise MissingDependencyError(NVCC_MISSING.format(feature=self.feature))
        with self, checked("kernel compilation (nvcc)"):
            module = SourceModule(source, no_extern_c=True, options=["-O3"])
            kernels = {name: module.get_function(name) for name in names}
        self._modules.append(module)
        return kernels

    def alloc(self, nbytes: int):
        """A device allocation of ``nbytes`` (at least 1) in this context."""
        with self, checked(f"allocation of {nbytes} bytes"):
            return self.cuda.mem_alloc(max(int(nbytes), 1))

    def pinned(self, count: int, dtype) -> Any:
        """A page-locked host array of ``count`` elements (async copies need pinned memory)."""
        with self, checked(f"page-locked allocation of {count} elements"):
            return self.cuda.pagelocked_empty(max(int(count), 1), dtype)

    def close(self) -> None:
        """Release the primary context retained here (a caller's context is left alone); not inside ``with``.

        The thread's context stack is left as it was: pycuda's ``detach`` pushes the (not current) primary context
        and releases it without a pop, so the pop is done here. From another thread than the one that made the
        session, pycuda's ``detach`` touches neither the stack nor the retain count.
        """
        if self._depth:
            raise DeviceError(f"{self.feature}: close() inside 'with session:' would release a context in use")
        context, self.context, self._modules = self.context, None, []
        if self._owned and context is not None:
            with checked("context release"):
                context.detach()
            if threading.get_ident() == self._thread:
                _pop_driver_context()


def device_pointer(obj: Any) -> int:
    """The device address of a pycuda allocation, GPUArray, CUDA-array-interface object or plain int."""
    if isinstance(obj, int):
        return obj
    interface = getattr(obj, "__cuda_array_interface__", None)
    if interface is not None:
        return int(interface["data"][0])
    gpudata = getattr(obj, "gpudata", None)
    return int(gpudata if gpudata is not None else obj)


def has_cuda_device() -> bool:
    """True when pycuda imports and the driver reports at least one CUDA device (for skips and checks)."""
    try:
        import pycuda.driver as cuda

        cuda.init()
        return cuda.Device.count() > 0
    except Exception:  # ImportError, or pycuda's driver errors when no driver/GPU is present
        return False
