"""Read and embed the ModelCard in an ONNX file's ``metadata_props`` (key ``edgepose.card``)."""

from __future__ import annotations

import os

from edgepose.card import CARD_KEY, ModelCard
from edgepose.errors import CardError, ModelError, require


def load_onnx(path: str | os.PathLike, purpose: str = "Editing ONNX metadata"):
    """(onnx module, ModelProto) of ``path``, or ModelError for a missing, corrupt or truncated file."""
    onnx = require("onnx", "deploy", purpose)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelError(f"model file not found: {path}")
    try:
        return onnx, onnx.load(path)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ModelError(f"cannot parse {path} as ONNX (corrupt or truncated): {exc}") from exc


def read_card(path: str | os.PathLike) -> ModelCard:
    """The card embedded in an ONNX file (through ONNX Runtime, which the runtime always has)."""
    from edgepose.backends.onnxruntime import OnnxRuntimeBackend
    from edgepose.contract import card_from_metadata

    with OnnxRuntimeBackend(path) as backend:
        return card_from_metadata(backend.metadata, os.fspath(path))


def embed_card(src: str | os.PathLike, card: ModelCard, dst: str | os.PathLike) -> None:
    """Write a copy of ``src`` with ``card`` in its metadata (replacing any old card), atomically.

    The card is checked against the model's tensors first, and read back from the written copy before that is
    renamed to ``dst``, so a contradicting or unreadable card never reaches ``dst``.
    """
    from edgepose.backends.onnxruntime import OnnxRuntimeBackend
    from edgepose.contract import bind
    from edgepose.io import atomic_path

    src, dst = os.fspath(src), os.fspath(dst)
    onnx, model = load_onnx(src)
    with OnnxRuntimeBackend(src) as backend:
        bind(card, backend, src)
    kept = [p for p in model.metadata_props if p.key != CARD_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key, entry.value = CARD_KEY, card.to_json()
    with atomic_path(dst) as tmp:
        onnx.save(model, tmp)
        if read_card(tmp) != card:  # pragma: no cover - would be a bug in the writer
            raise CardError(f"card read back from {dst} differs from the one written")
