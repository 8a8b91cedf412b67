"""PyTorch pose model -> ONNX with the ModelCard embedded: opset 17, named tensors, dynamic batch, onnxslim.

    export_model(model, card, "model.onnx")          # a built (or pruned, or QAT) model
    export_checkpoint("best.pth", "model.onnx")      # a training checkpoint: rebuilds its own model
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

import torch

from deploy.artifact import write_artifact
from edgepose.card import ModelCard
from edgepose.errors import ModelError

OPSET = 17


class _Outputs(torch.nn.Module):
    """Turns the model's output dict into a tuple in the card's ``output_names`` order (what ONNX needs)."""

    def __init__(self, model: torch.nn.Module, names: tuple[str, ...]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(x)
        missing = [n for n in self.names if n not in out]
        if missing:
            raise ModelError(f"model outputs {sorted(out)}, the card expects {list(self.names)}")
        return tuple(out[n] for n in self.names)


def export_model(model: torch.nn.Module, card: ModelCard, path: str | os.PathLike, opset: int = OPSET,
                 dynamic_batch: bool = True, slim: bool = True, batch: int = 1,
                 check: Callable[[str], object] | None = None) -> str:
    """Export ``model`` (eval mode, CPU, float32) for ``card`` to ``path``; returns the path.

    ``dynamic_batch`` False fixes the batch axis at ``batch`` (what some TensorRT/DLA builds want).

    The graph is checked by onnx.checker, simplified by onnxslim when ``slim``, and carries the card (checked
    against its tensors by ``embed_card``); ``check(tmp)`` (e.g. the parity check) runs on the finished file
    before it is renamed into place (``deploy.artifact.write_artifact``): the file appears only when everything
    succeeded.
    """
    import onnx

    from edgepose.onnx_card import embed_card

    path = os.fspath(path)
    if opset < OPSET:
        raise ModelError(f"opset {opset} is too old: edgepose exports opset {OPSET} or newer")
    if batch < 1:
        raise ModelError(f"batch must be >= 1, got {batch}")
    model = model.eval().cpu().float()
    w, h = card.input_size
    names = tuple(card.output_names)
    wrapped = _Outputs(model, names)
    axes = {card.input_name: {0: "N"}, **{n: {0: "N"} for n in names}} if dynamic_batch else None
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.onnx")
        with torch.no_grad():
            torch.onnx.export(wrapped, torch.zeros(batch, 3, h, w), raw, input_names=[card.input_name],
                              output_names=list(names), dynamic_axes=axes, opset_version=opset, dynamo=False)
        graph = onnx.load(raw)
        if slim:
            import onnxslim

            graph = onnxslim.slim(graph)
        onnx.checker.check_model(graph)
        onnx.save(graph, raw)
        with write_artifact(path, "ONNX model, card embedded", check=check) as tmp:
            embed_card(raw, card, tmp)
    return path


def export_checkpoint(checkpoint: str | os.PathLike, path: str | os.PathLike, **options) -> str:
    """Export the model a checkpoint rebuilds (pruned and QAT models included) with its card."""
    from compress.checkpoint import load_model

    model, card, _ = load_model(checkpoint)
    return export_model(model, card, path, **options)
