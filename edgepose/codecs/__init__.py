"""Keypoint codecs: model outputs <-> keypoints in model-input pixels. ``build_codec(card)`` picks one by name."""

from __future__ import annotations

from typing import Any

from edgepose.codecs.base import Codec
from edgepose.codecs.msra import MSRAHeatmap
from edgepose.codecs.simcc import SimCC
from edgepose.codecs.udp import UDPHeatmap
from edgepose.errors import CardError

CODECS = {"msra": MSRAHeatmap, "udp": UDPHeatmap, "simcc": SimCC}

__all__ = ["CODECS", "Codec", "MSRAHeatmap", "SimCC", "UDPHeatmap", "build_codec"]


def build_codec(card: Any) -> Codec:
    """The codec a ``ModelCard`` names in ``card.codec``; an unknown name raises CardError listing the valid ones."""
    cls = CODECS.get(getattr(card, "codec", None))
    if cls is None:
        raise CardError(f"unknown codec {getattr(card, 'codec', None)!r}; valid codecs: {sorted(CODECS)}")
    return cls.from_card(card)
