"""ONNX Runtime backend: session options, execution providers, validated named tensors, fixed-batch looping (or a
fixed batch of 1 rewritten to a dynamic one at load time: edgepose.backends.batch_rewrite)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from edgepose.backends.base import BackendBase, TensorSpec, check_feeds
from edgepose.errors import InputError, ModelError

ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}
# Preferred order; only those this onnxruntime build offers are used.
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
OPT_LEVELS = ("disable", "basic", "extended", "all")


@dataclass(frozen=True)
class OrtOptions:
    """Session settings. ``threads=None`` lets ONNX Runtime choose; ``providers=None`` picks GPU EPs when present.

    ``spinning`` lets ONNX Runtime's worker threads busy-wait between operators (its default). On the 2-core test
    machine that made Lite-HRNet-18 inference 20% faster at batch 1 (13.4-14.4 vs 17.4 ms), which outweighs the
    crop time it costs; set it False where the CPU is shared with other work and latency matters less.

    ``batch_rewrite``: a model with a fixed batch of 1 gets a dynamic batch axis at load time when its graph allows
    it and the rewritten model matches the original on a probe batch (cached; needs the ``onnx`` package). False
    keeps one call per person.
    """

    threads: int | None = None
    optimization: str = "all"
    providers: tuple[str, ...] | None = None
    spinning: bool = True
    batch_rewrite: bool = True


def _spec(node) -> TensorSpec:
    if node.type not in ORT_DTYPES:
        raise ModelError(f"tensor '{node.name}' has type {node.type}, which edgepose does not handle")
    shape = tuple(d if isinstance(d, int) and d > 0 else None for d in node.shape)
    return TensorSpec(node.name, np.dtype(ORT_DTYPES[node.type]), shape)


def choose_providers(requested: tuple[str, ...] | None) -> list[str]:
    """The execution providers to use: the requested ones (all must exist) or GPU ones when present, then CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if requested is not None:
        missing = [p for p in requested if p not in available]
        if missing:
            raise ModelError(f"execution provider(s) {missing} are not in this onnxruntime build; it has {available}")
        return list(requested)
    return [p for p in GPU_PROVIDERS if p in available] + ["CPUExecutionProvider"]


class OnnxRuntimeBackend(BackendBase):
    """Runs an ONNX model with ONNX Runtime.

    A model whose batch axis is fixed (e.g. 1) still takes any batch: the backend loops over chunks of that size
    (padding the last) and says so in ``batch_mode`` ("loop"; "dynamic" otherwise). A fixed batch of 1 is first
    made dynamic when ``OrtOptions.batch_rewrite`` allows and the graph permits (``batch_mode`` "rewritten");
    ``batch_note`` says what was done or why the loop stays (None for models that were dynamic already).
    ``InferenceSession.run`` is thread-safe, and so is this backend.
    """

    thread_safe = True

    def __init__(self, path: str | os.PathLike, options: OrtOptions | None = None) -> None:
        import onnxruntime as ort

        options = options or OrtOptions()
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise ModelError(f"model file not found: {self.path}")
        if options.optimization not in OPT_LEVELS:
            raise ModelError(f"optimization must be one of {list(OPT_LEVELS)}, got {options.optimization!r}")
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[options.optimization]
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if options.spinning else "0")
        if options.threads is not None:
            so.intra_op_num_threads = int(options.threads)
            so.inter_op_num_threads = 1
        providers = choose_providers(options.providers)
        self._session = self._open_session(self.path, so, providers)
        self.metadata = dict(self._session.get_modelmeta().custom_metadata_map)
        self._describe_session()
        self.batch_note: str | None = None
        if self.fixed_batch == 1:
            self._rewrite_batch(options, so, providers)

    def _open_session(self, source: str | bytes, so, providers: list[str]):
        """An InferenceSession of a model path or model bytes; ModelError naming the file when ORT cannot load it."""
        import onnxruntime as ort

        try:
            return ort.InferenceSession(source, sess_options=so, providers=providers)
        except Exception as exc:  # ORT raises its own exception types for corrupt/truncated files
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            what = self.path if isinstance(source, str) else f"the batch-rewritten copy of {self.path}"
            raise ModelError(f"ONNX Runtime cannot load {what} (corrupt, truncated or unsupported): {first}") from exc

    def _describe_session(self) -> None:
        """Specs, providers and batch handling of the current session."""
        self.providers = self._session.get_providers()
        self.inputs = [_spec(n) for n in self._session.get_inputs()]
        self.outputs = [_spec(n) for n in self._session.get_outputs()]
        batch_dims = {s.shape[0] for s in self.inputs if s.shape}
        self.fixed_batch = next(iter(batch_dims)) if len(batch_dims) == 1 and None not in batch_dims else None
        self.batch_mode = "loop" if self.fixed_batch is not None else "dynamic"
        self._loop_specs = [TensorSpec(s.name, s.dtype, (None,) + s.shape[1:]) for s in self.inputs]

    def _rewrite_batch(self, options: OrtOptions, so, providers: list[str]) -> None:
        """Swap in the batch-rewritten session when the rewrite is on and succeeds; ``batch_note`` says why not."""
        if not options.batch_rewrite:
            self.batch_note = "per-person loop: batch rewrite turned off (batch_rewrite=False)"
            return
        from edgepose.backends.batch_rewrite import rewrite_batch

        outcome = rewrite_batch(self.path, self._session, self.inputs,
                                lambda data: self._open_session(data, so, providers))
        self.batch_note = outcome.note
        if outcome.session is not None:
            self._session = outcome.session
            self._describe_session()
            self.batch_mode = "rewritten"

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Validate ``feeds`` and run; outputs come back by name."""
        if self._session is None:
            raise ModelError(f"backend for {self.path} is closed")
        if self.fixed_batch is None:
            check_feeds(self.inputs, feeds)
            return self._run(feeds)
        check_feeds(self._loop_specs, feeds)
        return self._run_looped(feeds)

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [s.name for s in self.outputs]
        return dict(zip(names, self._session.run(names, feeds), strict=True))

    def _run_looped(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        sizes = {len(a) for a in feeds.values()}
        if len(sizes) != 1:
            raise InputError(f"all inputs must share the batch size, got sizes {sorted(sizes)}")
        total, step = sizes.pop(), self.fixed_batch
        chunks: dict[str, list[np.ndarray]] = {s.name: [] for s in self.outputs}
        for start in range(0, total, step):
            part = {k: v[start:start + step] for k, v in feeds.items()}
            count = len(next(iter(part.values())))
            if count < step:
                part = {k: np.concatenate([v, np.zeros((step - count, *v.shape[1:]), v.dtype)])
                        for k, v in part.items()}
            for name, value in self._run(part).items():
                chunks[name].append(value[:count])
        if total == 0:
            return {s.name: np.zeros((0,) + tuple(d or 0 for d in s.shape[1:]), s.dtype) for s in self.outputs}
        return {k: np.concatenate(v) for k, v in chunks.items()}

    def close(self) -> None:
        """Drop the session."""
        self._session = None
