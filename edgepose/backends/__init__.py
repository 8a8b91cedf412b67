"""Inference backends behind one small protocol, chosen by model file suffix."""

from __future__ import annotations

import os

from edgepose.backends.base import Backend, TensorSpec
from edgepose.backends.formats import FORMATS, format_of
from edgepose.errors import ModelError


def _onnxruntime(path: str, **options) -> Backend:
    import dataclasses

    from edgepose.backends.onnxruntime import OnnxRuntimeBackend, OrtOptions

    valid = {f.name for f in dataclasses.fields(OrtOptions)}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ModelError(f"unknown ONNX Runtime option(s) {unknown}; valid: {sorted(valid)}")
    return OnnxRuntimeBackend(path, OrtOptions(**options))


def _check_options(kind: str, options: dict, valid: set[str]) -> None:
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ModelError(f"unknown {kind} option(s) {unknown}; valid: {sorted(valid)}")


def _tensorrt(path: str, **options) -> Backend:
    from edgepose.backends.tensorrt import TensorRTBackend

    _check_options("TensorRT", options, {"context", "stream", "device"})
    return TensorRTBackend(path, **options)


def _torch(path: str, **options) -> Backend:
    from edgepose.backends.torch_backend import TorchBackend

    _check_options("torch", options, {"device", "half", "card"})
    return TorchBackend(path, **options)


# backend name (edgepose.backends.formats.FORMATS) -> factory; a literal dict so every backend is one grep away.
FACTORIES = {"onnxruntime": _onnxruntime, "tensorrt": _tensorrt, "torch": _torch}
BACKENDS = {suffix: FACTORIES[fmt.backend] for suffix, fmt in FORMATS.items()}


def open_backend(path: str | os.PathLike, card=None, **options) -> Backend:
    """Open the backend for ``path`` by its suffix (the ``FORMATS`` table): ``.onnx`` -> ONNX Runtime,
    ``.engine``/``.plan`` -> TensorRT, ``.ts``/``.torchscript``/``.pt2`` -> PyTorch (TorchScript / torch.export).

    ``card`` (a ModelCard or a YAML/JSON path) replaces the card the file carries, or supplies one it lacks, for
    every format: the PyTorch backend opens with it (it needs the input size to probe the model), the others report
    it in ``metadata``.
    """
    path = os.fspath(path)
    backend = format_of(path).backend
    if card is None:
        return FACTORIES[backend](path, **options)
    from edgepose.card import CARD_KEY, ModelCard

    card = card if isinstance(card, ModelCard) else ModelCard.from_file(card)
    if backend == "torch":
        return FACTORIES[backend](path, card=card, **options)
    opened = FACTORIES[backend](path, **options)
    opened.metadata = {**opened.metadata, CARD_KEY: card.to_json()}
    return opened


__all__ = ["BACKENDS", "FORMATS", "Backend", "TensorSpec", "format_of", "open_backend"]
