"""The Backend protocol every inference engine implements, and the tensor checks they share."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from edgepose.errors import CardError, InputError

SIDECAR_SUFFIX = ".card.json"


@dataclass(frozen=True)
class TensorSpec:
    """Name, dtype and shape of a model input or output; ``None`` in ``shape`` marks a dynamic axis."""

    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...]

    def describe(self) -> str:
        """Human-readable 'name float32[?,3,256,192]'."""
        dims = ",".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name} {np.dtype(self.dtype).name}[{dims}]"


@runtime_checkable
class Backend(Protocol):
    """An inference engine: named, validated tensors in and out."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    metadata: dict[str, str]

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on named inputs and return every output by name."""
        ...

    def close(self) -> None:
        """Release the engine's resources."""
        ...


def check_feeds(specs: list[TensorSpec], feeds: dict[str, np.ndarray]) -> None:
    """Validate names, dtypes and static dims of ``feeds`` against ``specs``; never casts."""
    expected = {s.name: s for s in specs}
    missing = sorted(set(expected) - set(feeds))
    unknown = sorted(set(feeds) - set(expected))
    if missing or unknown:
        raise InputError(
            f"model inputs are {[s.describe() for s in specs]}; missing {missing}, unexpected {unknown}"
        )
    for name, spec in expected.items():
        array = feeds[name]
        if not isinstance(array, np.ndarray):
            raise InputError(f"input '{name}' must be a numpy array, got {type(array).__name__}")
        if array.dtype != spec.dtype:
            raise InputError(
                f"input '{name}' has dtype {array.dtype}, the model takes {np.dtype(spec.dtype).name} "
                "(edgepose does not cast silently: convert it, or use a model exported for this dtype)"
            )
        if array.ndim != len(spec.shape) or any(
            d is not None and d != a for d, a in zip(spec.shape, array.shape, strict=True)
        ):
            raise InputError(f"input '{name}' has shape {list(array.shape)}, the model takes {spec.describe()}")


class BackendBase:
    """Context-manager plumbing shared by backends. ``thread_safe``: ``infer`` may run in several threads at once
    (PoseEstimator serialises calls to backends that do not say so)."""

    thread_safe = False

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        """Release resources (no-op by default)."""

    def output(self, name: str) -> TensorSpec:
        """The spec of the output called ``name``."""
        for spec in self.outputs:  # type: ignore[attr-defined]
            if spec.name == name:
                return spec
        names = [s.name for s in self.outputs]  # type: ignore[attr-defined]
        raise KeyError(f"model has no output '{name}'; its outputs are {names}")


def card_sidecar(path: str) -> str:
    """Where the card of a model file without embedded metadata lives: ``<model file>.card.json``."""
    return path + SIDECAR_SUFFIX


def read_sidecar_metadata(path: str) -> dict[str, str]:
    """``{"edgepose.card": json}`` from ``<path>.card.json`` when that file exists, else ``{}``.

    The card is parsed here, so a broken sidecar fails when the model is opened, naming the sidecar.
    """
    from edgepose.card import CARD_KEY, ModelCard

    sidecar = card_sidecar(path)
    if not os.path.isfile(sidecar):
        return {}
    try:
        card = ModelCard.from_file(sidecar)
    except CardError as exc:
        raise CardError(f"card file {sidecar} beside {path}: {exc}") from exc
    return {CARD_KEY: card.to_json()}
