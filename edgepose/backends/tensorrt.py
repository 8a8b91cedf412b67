"""TensorRT backend (TensorRT 10+ name-based tensor API, pycuda for memory and the stream).

    with TensorRTBackend("pose.engine") as trt_backend:        # card read from pose.engine.card.json
        outputs = trt_backend.infer({"input": batch})          # numpy in, numpy out, validated like every backend

Buffers are allocated once for the first optimisation profile's largest shapes: device memory per tensor and a
pinned host copy for asynchronous transfers, all on one stream. A batch larger than the profile's maximum runs in
chunks; a chunk smaller than the profile's minimum (or a fixed-batch engine's batch) is padded with zeros and cut
back. ``infer_device(ptr, n)`` (or ``infer_device(gpu_array)``) runs on an input already on the device
(``CudaCropper`` output) without a host round trip; a batch below the profile minimum is copied into the backend's
own input buffer and zero-padded there, as the host path pads. TensorRT needs every tensor address 256-byte
aligned (``IExecutionContext::setTensorAddress``); device allocations are, a pointer into the middle of one may not
be. ``tensorrt`` and ``pycuda`` are imported only when a backend is made.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgepose.backends.base import BackendBase, TensorSpec, check_feeds, read_sidecar_metadata
from edgepose.errors import InputError, MissingDependencyError, ModelError

TENSOR_ALIGNMENT = 256  # bytes; NvInferRuntime.h setTensorAddress: "The pointer must have at least 256-byte alignment"


@dataclass
class _Tensor:
    """One engine I/O tensor and its buffers (device allocation, pinned host array of the max element count)."""

    name: str
    is_input: bool
    dtype: np.dtype
    shape: tuple[int, ...]  # engine shape, -1 where dynamic
    max_shape: tuple[int, ...]
    device: Any = None
    host: Any = None


def import_tensorrt():
    """``tensorrt`` (10 or newer) and ``pycuda.driver``, or MissingDependencyError naming every missing piece."""
    missing, found = [], {}
    for module in ("tensorrt", "pycuda.driver"):
        try:
            found[module] = __import__(module, fromlist=["_"])
        except ImportError as exc:
            missing.append(f"{module.split('.')[0]} ({exc})")
    if missing:
        raise MissingDependencyError(
            f"the TensorRT backend needs {' and '.join(missing)}: pip install 'edgepose[tensorrt]' on a machine with "
            "an NVIDIA driver (Jetson: TensorRT comes with JetPack)"
        )
    trt = found["tensorrt"]
    major = int(str(trt.__version__).split(".")[0])
    if major < 10:
        raise MissingDependencyError(f"the TensorRT backend needs TensorRT >= 10, found {trt.__version__}")
    return trt


def _numpy_dtype(trt, dtype) -> np.dtype:
    try:
        return np.dtype(trt.nptype(dtype))
    except TypeError as exc:  # BF16, FP8, INT4 have no numpy type
        message = f"engine tensor type {dtype} has no numpy equivalent: edgepose cannot feed or read it"
        raise ModelError(message) from exc


def _read_io(trt, engine) -> list[_Tensor]:
    """Names, modes, dtypes, shapes and (inputs) profile-0 maximum shapes of every I/O tensor."""
    tensors = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        shape = tuple(int(d) for d in engine.get_tensor_shape(name))
        max_shape = shape
        if is_input and any(d < 0 for d in shape):
            max_shape = tuple(int(d) for d in engine.get_tensor_profile_shape(name, 0)[2])
        tensors.append(_Tensor(name, is_input, _numpy_dtype(trt, engine.get_tensor_dtype(name)), shape, max_shape))
    return tensors


def _batch_range(trt, engine, inputs: list[_Tensor]) -> tuple[int, int]:
    """(min, max) batch the engine runs: profile 0's range of axis 0, or the fixed batch of a static engine."""
    lows, highs = [], []
    for t in inputs:
        if t.shape and t.shape[0] < 0:
            low, _, high = engine.get_tensor_profile_shape(t.name, 0)
            lows.append(int(low[0]))
            highs.append(int(high[0]))
        elif t.shape:
            lows.append(t.shape[0])
            highs.append(t.shape[0])
    if not highs:
        raise ModelError("the engine has no batched input; edgepose feeds (N, 3, H, W) batches")
    return max(lows), min(highs)


class TensorRTBackend(BackendBase):
    """Runs a serialized TensorRT engine (``.engine``/``.plan``); the card comes from ``<engine>.card.json``.

    ``context``/``stream``: a pycuda context and stream to share (e.g. a ``CudaCropper``'s, so that
    ``infer_device`` needs no synchronisation); by default the device's primary context and a new stream
    (see ``edgepose.cuda.session``).
    """

    def __init__(self, engine_path: str | os.PathLike, context: Any = None, stream: Any = None,
                 device: int = 0) -> None:
        trt = import_tensorrt()
        from edgepose.cuda.session import CudaSession, checked

        self.path = os.fspath(engine_path)
        if not os.path.isfile(self.path):
            raise ModelError(f"engine file not found: {self.path}")
        with open(self.path, "rb") as fh:
            data = fh.read()
        if not data:
            raise ModelError(f"engine file {self.path} is empty")
        self.metadata = read_sidecar_metadata(self.path)
        self.session = CudaSession("The TensorRT backend", context, stream, device)
        self.context, self.stream = self.session.context, self.session.stream
        self._engine = self._exec = None
        try:
            with self.session:
                self._logger = trt.Logger(trt.Logger.ERROR)
                self._runtime = trt.Runtime(self._logger)
                self._engine = self._deserialize(data)
                self._exec = self._engine.create_execution_context()
                if self._exec is None:
                    raise ModelError(f"TensorRT could not create an execution context for {self.path} (GPU memory?)")
                self._tensors = _read_io(trt, self._engine)
                inputs = [t for t in self._tensors if t.is_input]
                self.min_batch, self.max_batch = _batch_range(trt, self._engine, inputs)
                with checked("engine buffer allocation"):
                    self._allocate(inputs)
        except BaseException:
            self.close()
            raise
        self.batch_mode = "dynamic" if any(t.shape[0] < 0 for t in inputs) else "loop"
        self.inputs = [self._spec(t) for t in self._tensors if t.is_input]
        self.outputs = [self._spec(t) for t in self._tensors if not t.is_input]
        self._loop_specs = [TensorSpec(s.name, s.dtype, (None,) + s.shape[1:]) for s in self.inputs]

    def _deserialize(self, data: bytes):
        try:
            engine = self._runtime.deserialize_cuda_engine(data)
        except Exception as exc:  # some TensorRT builds raise instead of returning None
            engine, cause = None, exc
        else:
            cause = None
        if engine is None:
            detail = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
            raise ModelError(
                f"TensorRT cannot load {self.path}: corrupt or truncated, or built by another TensorRT version or "
                f"for another GPU; rebuild it on this machine with 'edgepose build-engine'{detail}"
            ) from cause
        return engine

    def _allocate(self, inputs: list[_Tensor]) -> None:
        for t in inputs:
            if not self._exec.set_input_shape(t.name, t.max_shape):
                raise ModelError(f"TensorRT refused input '{t.name}' shape {list(t.max_shape)} (profile maximum)")
        for t in self._tensors:
            if not t.is_input:
                t.max_shape = tuple(int(d) for d in self._exec.get_tensor_shape(t.name))
                if any(d < 0 for d in t.max_shape):
                    raise ModelError(f"output '{t.name}' of {self.path} has a data-dependent shape {t.max_shape}")
            count = int(np.prod(t.max_shape, dtype=np.int64))
            t.device = self.session.cuda.mem_alloc(max(count * t.dtype.itemsize, 1))
            t.host = self.session.cuda.pagelocked_empty(max(count, 1), t.dtype)

    @staticmethod
    def _spec(t: _Tensor) -> TensorSpec:
        return TensorSpec(t.name, t.dtype, tuple(None if d < 0 else d for d in t.shape))

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Validate ``feeds`` and run them in chunks of at most ``max_batch``; numpy outputs by name."""
        self._check_open()
        check_feeds(self._loop_specs, feeds)
        sizes = {len(a) for a in feeds.values()}
        if len(sizes) != 1:
            raise InputError(f"all inputs must share the batch size, got sizes {sorted(sizes)}")
        total = sizes.pop()
        outputs = [t for t in self._tensors if not t.is_input]
        if total == 0:
            return {t.name: np.zeros((0, *t.max_shape[1:]), t.dtype) for t in outputs}
        chunks: dict[str, list[np.ndarray]] = {t.name: [] for t in outputs}
        for start in range(0, total, self.max_batch):
            part = {k: v[start:start + self.max_batch] for k, v in feeds.items()}
            count = len(next(iter(part.values())))
            run = max(count, self.min_batch)
            for name, value in self._run_host(part, run).items():
                chunks[name].append(value[:count])
        return {k: np.concatenate(v) if len(v) > 1 else v[0] for k, v in chunks.items()}

    def _run_host(self, part: dict[str, np.ndarray], run: int) -> dict[str, np.ndarray]:
        from edgepose.cuda.session import checked

        cuda = self.session.cuda
        with self.session, checked("TensorRT inference (copies, execute_async_v3)"):
            for t in self._tensors:
                if t.is_input:
                    value = part[t.name]
                    per_item = int(np.prod(value.shape[1:], dtype=np.int64))
                    staged = t.host[: run * per_item].reshape(run, *value.shape[1:])
                    staged[: len(value)] = value
                    staged[len(value):] = 0
                    cuda.memcpy_htod_async(t.device, staged, self.stream)
                    self._set_shape(t.name, staged.shape)
            return self._execute(to_host=True)

    def infer_device(self, pointer: Any, n: int | None = None, to_host: bool = True) -> dict[str, Any]:
        """Run the engine's single input from device memory (``pointer``: int, pycuda allocation or GPUArray).

        ``pointer`` holds an (n, C, H, W) batch in the engine's input dtype (``n`` may be left out for an array
        with ``__cuda_array_interface__``, e.g. ``CudaCropper``'s output), written on this backend's stream or
        synchronized before the call. Returns numpy outputs, or with ``to_host=False`` pycuda GPUArrays over this
        backend's output buffers (valid until the next call), e.g. for ``GpuArgmax`` (their pycuda methods need
        ``with backend.session:``).
        """
        from edgepose.cuda.session import checked, device_pointer

        self._check_open()
        inputs = [t for t in self._tensors if t.is_input]
        if len(inputs) != 1:
            raise InputError(f"infer_device needs a single-input engine; {self.path} has {len(inputs)} inputs")
        if n is None:
            interface = getattr(pointer, "__cuda_array_interface__", None)
            if interface is None:
                raise InputError("infer_device(pointer, n): give n, the batch size, for a bare device pointer")
            n = int(interface["shape"][0])
        n = int(n)
        if n < 1:
            raise InputError(f"infer_device needs at least 1 crop, got {n}")
        if n > self.max_batch:
            raise InputError(f"infer_device runs at most {self.max_batch} crops per call (the engine's profile "
                             f"maximum), got {n}: split the batch")
        t, address = inputs[0], device_pointer(pointer)
        run = max(n, self.min_batch)
        with self.session, checked("TensorRT inference from device memory"):
            if run > n:  # below the profile minimum: into our own buffer, zero-padded, as the host path pads
                item = int(np.prod(t.max_shape[1:], dtype=np.int64)) * t.dtype.itemsize
                cuda = self.session.cuda
                cuda.memcpy_dtod_async(t.device, address, n * item, self.stream)
                cuda.memset_d8_async(int(t.device) + n * item, 0, (run - n) * item, self.stream)
                address = int(t.device)
            self._set_shape(t.name, (run, *t.max_shape[1:]))
            return self._execute(to_host=to_host, input_pointer=address, keep=n)

    def _set_shape(self, name: str, shape: tuple[int, ...]) -> None:
        if not self._exec.set_input_shape(name, tuple(int(d) for d in shape)):
            raise InputError(f"TensorRT refused input '{name}' shape {list(shape)} for {self.path}")

    def _execute(self, to_host: bool, input_pointer: int | None = None, keep: int | None = None) -> dict[str, Any]:
        """Bind addresses, enqueue, copy outputs back (or wrap them), the first ``keep`` items of each (all by
        default); the context is current and the input copies are queued."""
        from pycuda import gpuarray

        cuda = self.session.cuda
        for t in self._tensors:
            address = input_pointer if (t.is_input and input_pointer is not None) else int(t.device)
            if address % TENSOR_ALIGNMENT:
                raise InputError(f"TensorRT needs {TENSOR_ALIGNMENT}-byte aligned tensor addresses; '{t.name}' is at "
                                 f"{address:#x} ({address % TENSOR_ALIGNMENT} bytes past a boundary): pass the start "
                                 f"of a device allocation or copy the batch into one")
            if not self._exec.set_tensor_address(t.name, address):
                raise ModelError(f"TensorRT refused the address of tensor '{t.name}'")
        if not self._exec.execute_async_v3(self.stream.handle):
            raise ModelError(f"TensorRT execute_async_v3 failed for {self.path} (see TensorRT's messages above)")
        results = {}
        for t in self._tensors:
            if t.is_input:
                continue
            shape = tuple(int(d) for d in self._exec.get_tensor_shape(t.name))
            if keep is not None:
                shape = (min(shape[0], keep), *shape[1:])
            if not to_host:
                results[t.name] = gpuarray.GPUArray(shape, t.dtype, gpudata=t.device)
                continue
            host = t.host[: int(np.prod(shape, dtype=np.int64))].reshape(shape)
            cuda.memcpy_dtoh_async(host, t.device, self.stream)
            results[t.name] = host
        self.stream.synchronize()
        return {k: v.copy() for k, v in results.items()} if to_host else results

    def _check_open(self) -> None:
        if self._exec is None:
            raise ModelError(f"backend for {self.path} is closed")

    def close(self) -> None:
        """Free device and pinned memory, drop the engine and release the context if retained here."""
        cuda_session = getattr(self, "session", None)
        if cuda_session is None or cuda_session.context is None:
            return
        with cuda_session:
            cuda_session.stream.synchronize()
            for t in getattr(self, "_tensors", []):
                if t.device is not None:
                    t.device.free()
                t.device = t.host = None
            self._exec = self._engine = None
        cuda_session.close()
