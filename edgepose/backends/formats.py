"""The one table of model file formats: suffix -> backend and what a file of that kind can do.

Backends (``open_backend``), the benchmark, ``edgepose export`` and the Jetson bundle all read it, so a new format
is one row here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from edgepose.errors import ModelError


@dataclass(frozen=True)
class ModelFormat:
    """One model file format.

    ``backend``: the runtime backend that opens it. ``kind``: the exporter's name for it. ``card``: where its model
    card lives ("embedded" in the file's metadata, "sidecar" ``FILE.card.json``). ``portable``: runs on any machine
    with the backend (a TensorRT engine is tied to the GPU and TensorRT version it was built with). ``threads``:
    the benchmark's --threads/--provider apply. ``export``: ``edgepose export --out`` can write it.
    """

    suffix: str
    backend: str
    kind: str
    card: str
    portable: bool
    threads: bool
    export: bool


FORMATS: dict[str, ModelFormat] = {f.suffix: f for f in (
    ModelFormat(".onnx", "onnxruntime", "onnx", "embedded", portable=True, threads=True, export=True),
    ModelFormat(".engine", "tensorrt", "engine", "sidecar", portable=False, threads=False, export=False),
    ModelFormat(".plan", "tensorrt", "engine", "sidecar", portable=False, threads=False, export=False),
    ModelFormat(".ts", "torch", "torchscript", "embedded", portable=True, threads=False, export=True),
    ModelFormat(".torchscript", "torch", "torchscript", "embedded", portable=True, threads=False, export=True),
    ModelFormat(".pt2", "torch", "export", "sidecar", portable=True, threads=False, export=True),
)}


def suffix_of(path: str | os.PathLike) -> str:
    """The lower-case suffix of ``path`` ('.onnx'), '' without one."""
    return os.path.splitext(os.fspath(path))[1].lower()


def format_of(path: str | os.PathLike) -> ModelFormat:
    """The format of ``path`` by its suffix; an unknown suffix raises ModelError listing the supported ones."""
    suffix = suffix_of(path)
    if suffix not in FORMATS:
        raise ModelError(f"no backend for '{suffix or os.fspath(path)}' files; supported suffixes: {sorted(FORMATS)}")
    return FORMATS[suffix]


def suffixes(backend: str | None = None, kind: str | None = None) -> tuple[str, ...]:
    """Suffixes of the formats with this backend and/or kind (all when both are None)."""
    return tuple(s for s, f in FORMATS.items()
                 if (backend is None or f.backend == backend) and (kind is None or f.kind == kind))
