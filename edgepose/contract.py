"""Bind a ModelCard to a backend: find the tensors it names and refuse a card that contradicts the model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgepose.backends.base import Backend, TensorSpec
from edgepose.card import CARD_KEY, DEFAULT_OUTPUTS, ModelCard
from edgepose.errors import CardError, OutputError


@dataclass(frozen=True)
class Binding:
    """Which model tensors the runtime feeds and reads, and the shapes the card promises."""

    input: TensorSpec
    outputs: dict[str, str]  # canonical codec key -> model output name
    expected: dict[str, tuple[int, ...]]  # canonical key -> shape without the batch axis

    def rename(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Model outputs -> canonical codec keys, checking each shape against the card."""
        out = {}
        for key, name in self.outputs.items():
            value = raw[name]
            if value.ndim != len(self.expected[key]) + 1 or value.shape[1:] != self.expected[key]:
                raise OutputError(
                    f"model output '{name}' has shape {list(value.shape)}, the card promises "
                    f"[N, {', '.join(map(str, self.expected[key]))}]"
                )
            out[key] = value
        return out


def card_from_metadata(metadata: dict[str, str], source: str) -> ModelCard:
    """The card embedded in a model's metadata, or a CardError that says how to supply one."""
    if CARD_KEY not in metadata:
        raise CardError(
            f"{source} carries no edgepose model card (metadata key '{CARD_KEY}'): pass one with --card CARD.yaml "
            f"(or card=... in Python), or embed it with 'edgepose card {source} --set CARD.yaml --out NEW.onnx'"
        )
    return ModelCard.from_json(metadata[CARD_KEY])


def expected_output_shapes(card: ModelCard) -> dict[str, tuple[int, ...]]:
    """Per canonical output key, the (K, ...) shape the card implies."""
    k = card.num_keypoints
    if card.codec == "simcc":
        w, h = card.input_size
        r = card.simcc_split_ratio
        return {"simcc_x": (k, int(round(w * r))), "simcc_y": (k, int(round(h * r)))}
    hw, hh = card.heatmap_size
    return {"heatmaps": (k, hh, hw)}


def _pick_input(card: ModelCard, inputs: list[TensorSpec]) -> TensorSpec:
    if len(inputs) == 1:
        return inputs[0]
    for spec in inputs:
        if spec.name == card.input_name:
            return spec
    raise CardError(f"card input_name '{card.input_name}' is not among the model inputs {[s.name for s in inputs]}")


def _card_fields(card: ModelCard, key: str) -> str:
    """The card fields that fix the shape of the input (``key`` "input") or of canonical output ``key``."""
    w, h = card.input_size
    if key == "input":
        return f"card field 'input_size' [{w}, {h}] ([width, height])"
    if card.codec == "simcc":
        return f"card fields 'input_size' [{w}, {h}] x 'simcc_split_ratio' {card.simcc_split_ratio:g}"
    return f"card field 'heatmap_size' {list(card.heatmap_size)} ([width, height])"


def _check_static(spec: TensorSpec, expected: tuple[int, ...], what: str, fields: str) -> None:
    dims = spec.shape[1:]
    if len(dims) != len(expected) or any(d is not None and d != e for d, e in zip(dims, expected, strict=True)):
        raise CardError(f"card contradicts the model: {what} {spec.describe()}, but {fields} implies [N, "
                        f"{', '.join(map(str, expected))}]")


def bind(card: ModelCard, backend: Backend, source: str = "model") -> Binding:
    """Check the card against the backend's tensors and return the binding the pipeline uses."""
    spec = _pick_input(card, backend.inputs)
    if spec.dtype not in (np.float32, np.float16):
        raise CardError(f"{source} input {spec.describe()} is not float32/float16; edgepose feeds normalised floats")
    w, h = card.input_size
    _check_static(spec, (3, h, w), f"{source} input", _card_fields(card, "input"))
    expected = expected_output_shapes(card)
    names = {s.name: s for s in backend.outputs}
    canonical = DEFAULT_OUTPUTS[card.codec]
    wanted = list(card.output_names)
    if not all(n in names for n in wanted):
        if len(backend.outputs) == len(canonical) == 1:
            wanted = [backend.outputs[0].name]
        else:
            raise CardError(
                f"card output_names {wanted} are not all outputs of {source}; it has {list(names)}: "
                "set output_names in the card"
            )
    outputs = dict(zip(canonical, wanted, strict=True))
    for key, name in outputs.items():
        out_spec = names[name]
        if len(out_spec.shape) >= 2 and out_spec.shape[1] is not None and out_spec.shape[1] != card.num_keypoints:
            raise CardError(
                f"card lists {card.num_keypoints} keypoints but {source} output {out_spec.describe()} has "
                f"{out_spec.shape[1]}: set 'keypoints' in the card to the model's layout"
            )
        _check_static(out_spec, expected[key], f"{source} output", _card_fields(card, key))
    return Binding(spec, outputs, expected)
