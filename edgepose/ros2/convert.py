"""sensor_msgs/Image and CompressedImage <-> (H, W, 3) uint8 BGR frames, in plain numpy and OpenCV (no cv_bridge).

A message is anything with the message's attributes (a ROS message, a ``types.SimpleNamespace``); ``data`` may be
bytes, bytearray, memoryview, ``array.array('B')`` (what rclpy gives) or a list of ints.

16-bit images (``mono16``, ``16UC1``) become 8 bits by a fixed rule, the high byte (``value >> 8``), so that
``65535 -> 255`` and brightness does not change from frame to frame; a 12-bit camera in a 16-bit container looks
dark under it (shift the values up before publishing, or publish mono8).
"""

from __future__ import annotations

import cv2
import numpy as np

from edgepose.errors import InputError
from edgepose.preprocess import validate_frame

# encoding -> (channels, bytes per channel, OpenCV conversion to BGR or None). A literal dict you can grep.
ENCODINGS: dict[str, tuple[int, int, int | None]] = {
    "bgr8": (3, 1, None),
    "8UC3": (3, 1, None),  # no colour order given: taken as bgr8, as cv_bridge does
    "rgb8": (3, 1, cv2.COLOR_RGB2BGR),
    "bgra8": (4, 1, cv2.COLOR_BGRA2BGR),
    "rgba8": (4, 1, cv2.COLOR_RGBA2BGR),
    "mono8": (1, 1, cv2.COLOR_GRAY2BGR),
    "8UC1": (1, 1, cv2.COLOR_GRAY2BGR),
    "mono16": (1, 2, cv2.COLOR_GRAY2BGR),
    "16UC1": (1, 2, cv2.COLOR_GRAY2BGR),
}


def _supported() -> str:
    return f"supported encodings: {', '.join(ENCODINGS)}"


def _buffer(data: object, what: str) -> np.ndarray:
    """The message's ``data`` as a flat uint8 array (no copy for buffer objects)."""
    if isinstance(data, (list, tuple)):
        try:
            return np.asarray(data, dtype=np.uint8)
        except (OverflowError, ValueError, TypeError) as exc:
            raise InputError(f"{what} data must be bytes 0..255: {exc}") from exc
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError as exc:
        raise InputError(f"{what} data must be bytes, bytearray, array('B') or a list of ints, "
                         f"got {type(data).__name__}") from exc


def _dimension(msg: object, name: str) -> int:
    value = getattr(msg, name, None)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"Image message field '{name}' must be an integer, got {value!r}")
    return int(value)


def image_msg_to_bgr(msg: object) -> np.ndarray:
    """A sensor_msgs/Image-like message -> a new (H, W, 3) uint8 BGR array.

    Honours ``step`` (row padding) and, for 16-bit encodings, ``is_bigendian``. Raises InputError for an unsupported
    encoding, an empty image, a ``step`` shorter than a row, or ``data`` shorter than ``height * step``.
    """
    encoding = getattr(msg, "encoding", None)
    if encoding not in ENCODINGS:
        raise InputError(f"image encoding {encoding!r} is not supported; {_supported()} "
                         "(republish with image_transport or convert before sending)")
    channels, depth, code = ENCODINGS[encoding]
    height, width, step = (_dimension(msg, name) for name in ("height", "width", "step"))
    if height <= 0 or width <= 0:
        raise InputError(f"image of {width}x{height} pixels is empty")
    row = width * channels * depth
    if step < row:
        raise InputError(f"image step {step} is shorter than a row of {width} {encoding} pixels ({row} bytes)")
    data = _buffer(getattr(msg, "data", None), "Image")
    if data.size < height * step:
        raise InputError(f"image data has {data.size} bytes, {height} rows of step {step} need {height * step}")
    rows = data[:height * step].reshape(height, step)[:, :row]
    if depth == 2:
        order = ">" if getattr(msg, "is_bigendian", 0) else "<"
        values = np.ascontiguousarray(rows).view(f"{order}u2")
        pixels = (values >> 8).astype(np.uint8)
    else:
        pixels = rows
    pixels = pixels.reshape(height, width, channels) if channels > 1 else pixels.reshape(height, width)
    if code is None:
        return pixels.copy()  # never a view of the message's buffer
    return cv2.cvtColor(np.ascontiguousarray(pixels), code)


def compressed_msg_to_bgr(msg: object) -> np.ndarray:
    """A sensor_msgs/CompressedImage-like message (JPEG, PNG, ... in ``data``) -> (H, W, 3) uint8 BGR.

    Raises InputError for empty or undecodable data (e.g. a truncated JPEG, or a ``compressedDepth`` payload).
    """
    data = _buffer(getattr(msg, "data", None), "CompressedImage")
    fmt = getattr(msg, "format", "")
    if data.size == 0:
        raise InputError(f"CompressedImage (format {fmt!r}) has no data")
    frame = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if frame is None or frame.size == 0:
        raise InputError(f"OpenCV cannot decode the CompressedImage data ({data.size} bytes, format {fmt!r}): "
                         "corrupt, truncated, or not an image format OpenCV reads (jpeg, png, ...)")
    return frame


def bgr_to_image_msg_fields(frame: np.ndarray) -> dict:
    """The sensor_msgs/Image fields of an (H, W, 3) uint8 BGR frame: height, width, encoding 'bgr8', is_bigendian 0,
    step and data (bytes). The caller adds the header."""
    frame = validate_frame(frame)
    height, width = frame.shape[:2]
    return {"height": int(height), "width": int(width), "encoding": "bgr8", "is_bigendian": 0,
            "step": int(width) * 3, "data": np.ascontiguousarray(frame).tobytes()}
