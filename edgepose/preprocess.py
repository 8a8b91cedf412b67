"""CPU crop: one affine warp per box into the model's input size, colour order, mean/std, NCHW float, batched."""

from __future__ import annotations

import cv2
import numpy as np

from edgepose.affine import Affine
from edgepose.card import ModelCard
from edgepose.errors import InputError


def validate_frame(frame: object) -> np.ndarray:
    """Check that ``frame`` is an (H, W, 3) uint8 BGR image and return it."""
    if not isinstance(frame, np.ndarray):
        raise InputError(f"frame must be a numpy array (H, W, 3) uint8 BGR, got {type(frame).__name__}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        hint = " (convert grayscale with cv2.cvtColor(f, cv2.COLOR_GRAY2BGR), BGRA with COLOR_BGRA2BGR)"
        raise InputError(f"frame must have shape (H, W, 3) BGR, got {frame.shape}{hint}")
    if frame.dtype != np.uint8:
        raise InputError(f"frame must be uint8 (0-255), got {frame.dtype}: scale it to 8 bits first")
    if frame.shape[0] < 2 or frame.shape[1] < 2:
        raise InputError(f"frame of {frame.shape[1]}x{frame.shape[0]} pixels is too small to crop from")
    return frame


class Cropper:
    """Crops boxes from a frame as the card prescribes; output dtype follows the model input (float32/float16)."""

    def __init__(self, card: ModelCard, dtype: np.dtype | type = np.float32) -> None:
        self.size = card.input_size
        self.udp = card.codec == "udp"
        self.padding = card.bbox_padding
        # Per output channel: the BGR frame channel it comes from and a 256-entry table uint8 -> (v - mean) / std.
        self.source = (2, 1, 0) if card.color == "rgb" else (0, 1, 2)
        levels = np.arange(256, dtype=np.float64)
        self.tables = [((levels - m) / s).astype(np.float32)[None] for m, s in zip(card.mean, card.std, strict=True)]
        self.dtype = np.dtype(dtype)

    def affine(self, boxes: np.ndarray) -> Affine:
        """The crop transforms for (N, 4) xyxy boxes."""
        return Affine.from_boxes(boxes, self.size, self.padding, udp=self.udp)

    def warp(self, frame: np.ndarray, affine: Affine) -> np.ndarray:
        """Bilinear warps into an (N, H, W, 3) uint8 BGR stack (zero outside the frame)."""
        width, height = self.size
        out = np.empty((len(affine), height, width, 3), dtype=np.uint8)
        for i, matrix in enumerate(affine.matrices):
            cv2.warpAffine(frame, matrix, (width, height), dst=out[i], flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        return out

    def normalize(self, crops: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 BGR -> (N, 3, H, W) normalised, in the card's channel order.

        One table lookup per plane (``cv2.LUT`` writing straight into the output) does the colour order, mean, std
        and HWC -> CHW in a single pass over the pixels.
        """
        n, height, width, _ = crops.shape
        out = np.empty((n, 3, height, width), dtype=np.float32)
        for i in range(n):
            planes = cv2.split(crops[i])
            for c, src in enumerate(self.source):
                cv2.LUT(planes[src], self.tables[c], dst=out[i, c])
        return out if self.dtype == np.float32 else out.astype(self.dtype)

    def __call__(self, frame: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, Affine]:
        """Crop (N, 4) xyxy boxes from a BGR frame: returns the (N, 3, H, W) batch and its Affine."""
        affine = self.affine(boxes)
        return self.normalize(self.warp(frame, affine)), affine
