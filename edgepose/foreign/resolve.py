"""Where the runtime finds a card for a model that carries none: an MMDeploy SDK folder's pipeline, or the shapes of
a bare RTMPose (SimCC) ONNX."""

from __future__ import annotations

import os
import warnings

from edgepose.backends.base import Backend
from edgepose.card import CARD_KEY, ModelCard
from edgepose.contract import card_from_metadata
from edgepose.foreign.mmdeploy_sdk import card_from_mmdeploy_dir, is_mmdeploy_dir, mmdeploy_net
from edgepose.foreign.simcc_infer import InferredCardWarning, infer_simcc_card, inferred_message


def resolve_model(model: object) -> tuple[object, str | None]:
    """(model to open, MMDeploy SDK folder or None): a folder becomes its net file; anything else is unchanged."""
    if is_mmdeploy_dir(model):
        return mmdeploy_net(model), os.fspath(model)  # type: ignore[arg-type]
    return model, None


def card_for_model(backend: Backend, source: str, folder: str | None = None) -> ModelCard:
    """The model's card: the one embedded in it, else its MMDeploy SDK ``folder``'s, else one inferred from RTMPose
    SimCC output shapes (with an InferredCardWarning naming the assumptions), else the CardError saying how to supply
    one."""
    if CARD_KEY in backend.metadata:
        return card_from_metadata(backend.metadata, source)
    if folder is not None:
        return card_from_mmdeploy_dir(folder, backend)[1]
    card = infer_simcc_card(backend)
    if card is None:
        return card_from_metadata(backend.metadata, source)  # raises: no card, and none to infer
    warnings.warn(inferred_message(card, source), InferredCardWarning, stacklevel=4)  # -> PoseEstimator(...)
    return card
