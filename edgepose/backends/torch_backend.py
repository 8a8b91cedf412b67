"""PyTorch backend for models saved by ``deploy/export_torch.py``: TorchScript (``.ts``/``.torchscript``) or a
torch.export program (``.pt2``). torch is imported when a backend is made, never when this module is imported.

The card travels with the model: inside a TorchScript archive as the extra file ``edgepose.card`` (JSON), beside a
``.pt2`` as ``<file>.card.json``; ``card=`` supplies or overrides it. ``infer`` takes and returns numpy like every
backend; on CUDA ``infer_device`` takes a batch already on the GPU (a torch tensor, or any CUDA-array-interface /
DLPack object such as ``CudaCropper``'s output) and skips the host copy.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from edgepose.backends.base import BackendBase, TensorSpec, check_feeds, read_sidecar_metadata
from edgepose.backends.pt2_check import check_pt2_archive
from edgepose.card import CARD_KEY, ModelCard
from edgepose.errors import DeviceError, InputError, ModelError, require

TORCHSCRIPT_SUFFIXES = (".ts", ".torchscript")
EXPORT_SUFFIXES = (".pt2",)
FORCE_WEIGHTS_ONLY = "TORCH_FORCE_WEIGHTS_ONLY_LOAD"  # torch.load reads it at every call


def _device(torch, device: str):
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ModelError(f"device must be 'cpu' or 'cuda' (or 'cuda:N'), got {device!r}") from exc
    if dev.type not in ("cpu", "cuda"):
        raise ModelError(f"device must be 'cpu' or 'cuda' (or 'cuda:N'), got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} asked for, but this torch ({torch.__version__}) sees no CUDA GPU")
    return dev


def _export_max_batch(program) -> int | None:
    """Upper bound of the batch axis a torch.export program accepts (its range constraint), if it has one."""
    try:
        name = program.graph_signature.user_inputs[0]
        node = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == name)
        dim = node.meta["val"].shape[0]
        if isinstance(dim, int):
            return dim
        upper = program.range_constraints[dim.node.expr].upper
        return int(upper) if upper == upper and upper < 2**31 else None  # sympy oo for unbounded
    except (AttributeError, IndexError, KeyError, StopIteration, TypeError):
        return None


@contextlib.contextmanager
def _weights_only_loads() -> Iterator[None]:
    """Make every ``torch.load`` inside the block weights-only, even one that asks for full unpickling."""
    before = os.environ.get(FORCE_WEIGHTS_ONLY)
    os.environ[FORCE_WEIGHTS_ONLY] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(FORCE_WEIGHTS_ONLY, None)
        else:
            os.environ[FORCE_WEIGHTS_ONLY] = before


def _load_export(torch, path: str):
    """``torch.export.load`` of an archive that ``check_pt2_archive`` found free of code, weights-only unpickling."""
    check_pt2_archive(path)
    with _weights_only_loads():
        return torch.export.load(path)


def _outputs_tuple(out: Any, names: tuple[str, ...]) -> tuple:
    if isinstance(out, dict):
        missing = [n for n in names if n not in out]
        if missing:
            raise ModelError(f"model returns a dict with keys {sorted(out)}; the card names outputs {list(names)}")
        return tuple(out[n] for n in names)
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


class TorchBackend(BackendBase):
    """Runs a TorchScript or torch.export pose model on ``device`` ('cpu' or 'cuda'), FP16 with ``half``.

    ``half=True`` (CUDA only) converts the weights to float16 and declares a float16 input, so the runtime's crop
    feeds float16 as it does for an FP16 ONNX model; nothing is cast silently.
    """

    def __init__(self, path: str | os.PathLike, device: str = "cpu", half: bool = False,
                 card: ModelCard | str | os.PathLike | None = None) -> None:
        torch = self._torch = require("torch", "train", "The TorchScript / torch.export backend")
        self.path = os.fspath(path)
        suffix = os.path.splitext(self.path)[1].lower()
        if suffix not in TORCHSCRIPT_SUFFIXES + EXPORT_SUFFIXES:
            suffixes = list(TORCHSCRIPT_SUFFIXES + EXPORT_SUFFIXES)
            raise ModelError(f"TorchBackend reads {suffixes} files, got {self.path}")
        if not os.path.isfile(self.path):
            raise ModelError(f"model file not found: {self.path}")
        self.device = _device(torch, device)
        if half and self.device.type != "cuda":
            raise ModelError("half=True runs float16 on CUDA only; use device='cuda' or keep float32 on the CPU")
        self.kind = "torchscript" if suffix in TORCHSCRIPT_SUFFIXES else "export"
        self.half, self.batch_mode = bool(half), "dynamic"
        # The card: given > sidecar (.pt2) > embedded (TorchScript); a .pt2 without one fails before the slow load.
        sidecar = read_sidecar_metadata(self.path) if self.kind == "export" else {}
        if card is not None:
            card = card if isinstance(card, ModelCard) else ModelCard.from_file(card)
        given = {CARD_KEY: card.to_json()} if card is not None else {}
        if self.kind == "export" and not sidecar and not given:
            raise self._no_card()
        self._module, embedded, self.max_batch = self._load()
        self.metadata = {**embedded, **sidecar, **given}
        if CARD_KEY not in self.metadata:
            raise self._no_card()
        self.card = ModelCard.from_json(self.metadata[CARD_KEY])
        if self.half:
            self._module = self._module.half()
        self._dtype = np.dtype(np.float16 if self.half else np.float32)
        w, h = self.card.input_size
        self.inputs = [TensorSpec(self.card.input_name, self._dtype, (None, 3, h, w))]
        self.outputs = self._probe(h, w)

    def _no_card(self) -> ModelError:
        where = "embedded" if self.kind == "torchscript" else f"in {self.path}.card.json"
        return ModelError(f"{self.path} carries no edgepose card ({where}); pass card=CARD.yaml "
                          "(PoseEstimator: backend_options={'card': ...}) or re-export with deploy.export_torch")

    def _load(self) -> tuple[Any, dict[str, str], int | None]:
        torch = self._torch
        try:
            if self.kind == "torchscript":
                extra = {CARD_KEY: ""}
                with warnings.catch_warnings():  # torch 2.13 marks TorchScript deprecated; loading still works
                    warnings.filterwarnings("ignore", message=r"`torch\.jit\.load` is deprecated")
                    module = torch.jit.load(self.path, map_location=self.device, _extra_files=extra)
                text = extra[CARD_KEY]
                text = text.decode("utf-8") if isinstance(text, bytes) else text
                return module.eval(), ({CARD_KEY: text} if text else {}), None
            program = _load_export(torch, self.path)
            module = program.module().to(self.device)  # exported in eval mode; .eval() is not allowed on it
            return module, {}, _export_max_batch(program)
        except ModelError:
            raise
        except Exception as exc:  # torch raises RuntimeError, zipfile and pickle errors for bad archives
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"torch cannot load {self.path} as {self.kind} (corrupt, truncated, or saved by an "
                             f"incompatible torch): {first}") from exc

    def _probe(self, h: int, w: int) -> list[TensorSpec]:
        """Run one zero batch to learn the outputs' count, dtypes and shapes (batch axis dynamic)."""
        torch = self._torch
        try:
            with torch.inference_mode():
                outs = self._forward(torch.zeros(1, 3, h, w, dtype=self._torch_dtype(), device=self.device))
        except Exception as exc:
            raise ModelError(f"{self.path} does not run on a (1, 3, {h}, {w}) input as its card says: {exc}") from exc
        names = self.card.output_names if len(outs) == len(self.card.output_names) else [
            f"output{i}" for i in range(len(outs))]
        return [TensorSpec(n, np.dtype(str(o.dtype).replace("torch.", "")), (None, *o.shape[1:]))
                for n, o in zip(names, outs, strict=True)]

    def _torch_dtype(self):
        return self._torch.float16 if self.half else self._torch.float32

    def _forward(self, x) -> tuple:
        return _outputs_tuple(self._module(x), tuple(self.card.output_names))

    def _run(self, x) -> list[tuple]:
        """Forward ``x`` in chunks of at most ``max_batch`` (a .pt2's export range); per chunk, the output tuple."""
        step = self.max_batch or len(x)
        with self._torch.inference_mode():
            return [self._forward(x[i:i + step]) for i in range(0, len(x), step)]

    def _collect(self, chunks: list[tuple], to_host: bool) -> dict[str, Any]:
        torch = self._torch
        out = {}
        for i, spec in enumerate(self.outputs):
            parts = [c[i] for c in chunks]
            value = parts[0] if len(parts) == 1 else torch.cat(parts)
            out[spec.name] = value.detach().cpu().numpy() if to_host else value
        return out

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Validate ``feeds`` and run; numpy outputs by name."""
        self._check_open()
        check_feeds(self.inputs, feeds)
        batch = feeds[self.inputs[0].name]
        if len(batch) == 0:
            return {s.name: np.zeros((0, *s.shape[1:]), s.dtype) for s in self.outputs}
        x = self._torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
        return self._collect(self._run(x), to_host=True)

    def infer_device(self, batch: Any, stream: Any = None, to_host: bool = True) -> dict[str, Any]:
        """Run on an (N, 3, H, W) batch already on this backend's GPU: a torch CUDA tensor, or any object with
        ``__cuda_array_interface__`` (pycuda GPUArray, CuPy) or ``__dlpack__``, used in place (no copy).

        ``stream`` (a CUDA stream handle or an object with ``.handle``, e.g. ``CudaCropper.stream``): the stream
        that wrote ``batch``; torch's current stream waits for it. Returns numpy outputs, or torch tensors on the
        GPU with ``to_host=False``.
        """
        self._check_open()
        torch = self._torch
        if self.device.type != "cuda":
            raise ModelError("infer_device needs a backend made with device='cuda'")
        x = self._as_tensor(batch)
        spec = self.inputs[0]
        if x.dtype != self._torch_dtype():
            raise InputError(f"device batch has dtype {x.dtype}, the model takes {spec.describe()} (no silent casts)")
        if x.ndim != 4 or tuple(x.shape[1:]) != spec.shape[1:]:
            raise InputError(f"device batch has shape {list(x.shape)}, the model takes {spec.describe()}")
        if stream is not None:
            handle = int(getattr(stream, "handle", stream))
            torch.cuda.current_stream(self.device).wait_stream(torch.cuda.ExternalStream(handle, device=self.device))
        if len(x) == 0:
            return self.infer({spec.name: np.zeros((0, *spec.shape[1:]), spec.dtype)})
        return self._collect(self._run(x), to_host=to_host)

    def _as_tensor(self, batch: Any):
        torch = self._torch
        if torch.is_tensor(batch):
            x = batch
        elif hasattr(batch, "__cuda_array_interface__"):
            x = torch.as_tensor(batch, device=self.device)
        elif hasattr(batch, "__dlpack__"):
            x = torch.from_dlpack(batch)
        else:
            raise InputError(f"infer_device takes a torch CUDA tensor or a CUDA-array-interface / DLPack object, "
                             f"got {type(batch).__name__}")
        if x.device != self.device and not (x.is_cuda and self.device.index is None):
            raise InputError(f"device batch lives on {x.device}, this backend runs on {self.device}")
        return x.contiguous()

    def _check_open(self) -> None:
        if self._module is None:
            raise ModelError(f"backend for {self.path} is closed")

    def close(self) -> None:
        """Drop the module (GPU memory returns to torch's caching allocator)."""
        self._module = None
