"""PyTorch pose model -> TorchScript (traced) or torch.export program, with the ModelCard, for ``TorchBackend``.

    export_torch(model, card, "pose.ts")                 # TorchScript, card embedded (extra file edgepose.card)
    export_torch("best.pth", None, "pose.pt2")           # torch.export, dynamic batch 1..64, card in pose.pt2.card.json

The output dict becomes a tuple in ``card.output_names`` order (``deploy.export._Outputs``, as for ONNX). The
saved file is loaded back and compared with the eager model on a random batch of 3 before it is renamed into
place; a mismatch raises ModelError and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator

import torch

from deploy.artifact import write_artifact
from deploy.export import _Outputs
from edgepose.backends.formats import FORMATS, suffix_of, suffixes
from edgepose.card import CARD_KEY, ModelCard
from edgepose.errors import ModelError

KINDS = {suffix: FORMATS[suffix].kind for suffix in suffixes(backend="torch")}  # .ts/.torchscript/.pt2
# Relative tolerance of the reload check: max |saved - eager| <= RTOL * max(1, max |eager|). Both run the same
# float32 kernels on the same machine; 1e-4 leaves room for a different op order in the traced/exported graph.
RTOL = 1e-4


def _kind_for(path: str, kind: str | None) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in KINDS:
        raise ModelError(f"export_torch writes {sorted(KINDS)} files (the backend is chosen by suffix), got {path}")
    if kind is not None and kind != KINDS[suffix]:
        raise ModelError(f"kind={kind!r} does not match {path}: '{suffix}' files hold {KINDS[suffix]!r}")
    return KINDS[suffix]


def _resolve(checkpoint_or_model, card: ModelCard | None) -> tuple[torch.nn.Module, ModelCard]:
    if isinstance(checkpoint_or_model, torch.nn.Module):
        if card is None:
            raise ModelError("export_torch(model, card, path): a model needs its ModelCard")
        return checkpoint_or_model, card
    from compress.checkpoint import load_model

    model, saved_card, _ = load_model(checkpoint_or_model)
    return model, card or saved_card


@contextlib.contextmanager
def _quiet_jit() -> Iterator[None]:
    """Silence torch 2.13's "`torch.jit.*` is deprecated" notices (TorchScript still works; .pt2 is its successor)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated")
        yield


def _trace(wrapped: torch.nn.Module, h: int, w: int, generator: torch.Generator):
    """torch.jit.trace with the tracer's own check on a batch of 2 (catches a batch size baked into the graph)."""
    with _quiet_jit():
        return torch.jit.trace(wrapped, torch.randn(1, 3, h, w, generator=generator), check_trace=True,
                               check_inputs=[(torch.randn(2, 3, h, w, generator=generator),)], strict=True)


def _export(wrapped: torch.nn.Module, h: int, w: int, max_batch: int, generator: torch.Generator):
    """torch.export.export with a dynamic batch axis N in [1, max_batch]."""
    batch = torch.export.Dim("N", min=1, max=max_batch)
    example = torch.randn(2, 3, h, w, generator=generator)
    return torch.export.export(wrapped, (example,), dynamic_shapes=({0: batch},))


def _check_saved(saved: str, kind: str, wrapped: torch.nn.Module, h: int, w: int, generator) -> None:
    """Load the written file back and compare it with the eager model on a batch of 3."""
    x = torch.randn(3, 3, h, w, generator=generator)
    if kind == "torchscript":
        with _quiet_jit():
            module = torch.jit.load(saved, map_location="cpu")
    else:
        module = torch.export.load(saved).module()
    with torch.no_grad():
        want, got = wrapped(x), module(x)
    got = got if isinstance(got, (tuple, list)) else (got,)
    for name, a, b in zip(wrapped.names, want, got, strict=True):
        scale = max(1.0, float(a.abs().max()))
        diff = float((a - b).abs().max())
        if a.shape != b.shape or diff > RTOL * scale:
            raise ModelError(f"the saved {kind} model's output '{name}' differs from the eager model: "
                             f"max abs diff {diff:.3g} (shapes {list(b.shape)} vs {list(a.shape)}), allowed "
                             f"{RTOL * scale:.3g}")


def export_torch(checkpoint_or_model: torch.nn.Module | str | os.PathLike, card: ModelCard | None,
                 path: str | os.PathLike, kind: str | None = None, max_batch: int = 64, seed: int = 0,
                 check: Callable[[str], object] | None = None) -> str:
    """Export a model (or a checkpoint, rebuilt by ``compress.checkpoint.load_model``) for ``TorchBackend``.

    ``kind`` is 'torchscript' (``.ts``/``.torchscript``) or 'export' (``.pt2``); by default the suffix decides, and
    a contradicting pair is refused. ``card`` may be None for a checkpoint (its own card is used). TorchScript is
    traced on CPU float32 (any batch size runs); torch.export gets a dynamic batch ``N`` in [1, ``max_batch``].
    Every file (model, ``.pt2`` card sidecar) is written atomically; ``check(tmp)`` (e.g. the parity check) runs
    on the finished program before it is renamed into place. Returns ``path``.
    """
    from edgepose.backends.base import card_sidecar
    from edgepose.io import atomic_write_text

    path = os.fspath(path)
    kind = _kind_for(path, kind)
    model, card = _resolve(checkpoint_or_model, card)
    wrapped = _Outputs(model.eval().cpu().float(), tuple(card.output_names))
    w, h = card.input_size
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        program = _trace(wrapped, h, w, generator) if kind == "torchscript" else _export(wrapped, h, w, max_batch,
                                                                                         generator)
    with write_artifact(path, f"torch program ({kind}), card {FORMATS[suffix_of(path)].card}") as tmp:
        if kind == "torchscript":
            with _quiet_jit():
                torch.jit.save(program, tmp, _extra_files={CARD_KEY: card.to_json()})
        else:
            torch.export.save(program, tmp)
        _check_saved(tmp, kind, wrapped, h, w, generator)
        if kind == "export":  # the sidecar first: the check (and any reader) opens the program with its card
            atomic_write_text(card_sidecar(tmp), card.to_json() + "\n")
        try:
            if check is not None:
                check(tmp)
        except BaseException:
            if kind == "export":
                os.remove(card_sidecar(tmp))
            raise
    if kind == "export":
        os.replace(card_sidecar(tmp), card_sidecar(path))
    return path
