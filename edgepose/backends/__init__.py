"""Inference backends behind one small protocol, chosen by model file suffix."""

from __future__ import annotations

import os

from edgepose.backends.base import Backend, TensorSpec
from edgepose.errors import ModelError


def _onnxruntime(path: str, **options) -> Backend:
    import dataclasses

    from edgepose.backends.onnxruntime import OnnxRuntimeBackend, OrtOptions

    valid = {f.name for f in dataclasses.fields(OrtOptions)}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ModelError(f"unknown ONNX Runtime option(s) {unknown}; valid: {sorted(valid)}")
    return OnnxRuntimeBackend(path, OrtOptions(**options))


# suffix -> factory; a literal dict so every backend is one grep away.
BACKENDS = {".onnx": _onnxruntime}


def open_backend(path: str | os.PathLike, **options) -> Backend:
    """Open the backend for ``path`` by its suffix (``.onnx`` -> ONNX Runtime)."""
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in BACKENDS:
        raise ModelError(f"no backend for '{suffix or path}' files; supported suffixes: {sorted(BACKENDS)}")
    return BACKENDS[suffix](path, **options)


__all__ = ["BACKENDS", "Backend", "TensorSpec", "open_backend"]
