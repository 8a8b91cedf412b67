"""Models from other toolkits, run without a hand-written card: MMDeploy SDK model folders (the card comes from their
pipeline.json) and bare RTMPose ONNX files such as rtmlib's (the card is inferred from the SimCC output shapes)."""

from __future__ import annotations

from edgepose.foreign.mmdeploy_sdk import card_from_mmdeploy_dir, is_mmdeploy_dir, mmdeploy_net
from edgepose.foreign.resolve import card_for_model, resolve_model
from edgepose.foreign.simcc_infer import InferredCardWarning, infer_simcc_card

__all__ = ["InferredCardWarning", "card_for_model", "card_from_mmdeploy_dir", "infer_simcc_card", "is_mmdeploy_dir",
           "mmdeploy_net", "resolve_model"]
