"""An image's width and height from its file header, without decoding it: JPEG, PNG, BMP, WebP, TIFF, GIF, PNM.

``read_image`` asks this before decoding, so a tiny file that claims 30000x30000 pixels is refused in microseconds
instead of allocating gigabytes.
"""

from __future__ import annotations

import re
import struct

# Images and video frames larger than this are refused before decoding (a 200 MP phone photo still fits; decoded it
# takes 600 MB as BGR). ``edgepose predict --max-pixels`` and ``read_image(max_pixels=...)`` raise it.
DEFAULT_MAX_PIXELS = 200_000_000

# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic...): not DHT (C4), JPG (C8), DAC (CC).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # markers without a length field (TEM, RST0-7)
_PNM = re.compile(rb"P[1-6](?:\s+|#[^\n]*\n)+(\d+)(?:\s+|#[^\n]*\n)+(\d+)")


def _jpeg(data) -> tuple[int, int] | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            return None
        if marker in _SOF:
            if pos + 9 > len(data):
                return None
            height, width = struct.unpack_from(">HH", data, pos + 5)
            return width, height
        pos += 2 + struct.unpack_from(">H", data, pos + 2)[0]
    return None


def _png(data) -> tuple[int, int] | None:
    if len(data) < 24 or bytes(data[12:16]) != b"IHDR":
        return None
    width, height = struct.unpack_from(">II", data, 16)
    return width, height


def _bmp(data) -> tuple[int, int] | None:
    if len(data) < 26:
        return None
    if struct.unpack_from("<I", data, 14)[0] == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return struct.unpack_from("<HH", data, 18)
    width, height = struct.unpack_from("<ii", data, 18)
    return abs(width), abs(height)  # a negative height means rows top-down


def _webp(data) -> tuple[int, int] | None:
    if len(data) < 30 or bytes(data[8:12]) != b"WEBP":
        return None
    kind = bytes(data[12:16])
    if kind == b"VP8 ":
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L":
        bits = struct.unpack_from("<I", data, 21)[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X":
        width = int.from_bytes(bytes(data[24:27]), "little") + 1
        return width, int.from_bytes(bytes(data[27:30]), "little") + 1
    return None


def _tiff(data) -> tuple[int, int] | None:
    order = "<" if bytes(data[:2]) == b"II" else ">"
    big = struct.unpack_from(f"{order}H", data, 2)[0] == 43  # BigTIFF: 8-byte offsets and counts
    head, count_fmt, entry = (f"{order}Q", "Q", 20) if big else (f"{order}I", "H", 12)
    offset = struct.unpack_from(head, data, 8 if big else 4)[0]
    count = struct.unpack_from(f"{order}{count_fmt}", data, offset)[0]
    first = offset + struct.calcsize(count_fmt)
    found: dict[int, int] = {}
    for i in range(min(count, 4096)):
        at = first + i * entry
        tag, kind = struct.unpack_from(f"{order}HH", data, at)
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT, LONG or LONG8, stored in the entry itself
            fmt = {3: "H", 4: "I", 16: "Q"}.get(kind)
            if fmt is None:
                return None
            found[tag] = struct.unpack_from(f"{order}{fmt}", data, at + (12 if big else 8))[0]
    return (found[256], found[257]) if len(found) == 2 else None


def _gif(data) -> tuple[int, int] | None:
    return struct.unpack_from("<HH", data, 6) if len(data) >= 10 else None


def _pnm(data) -> tuple[int, int] | None:
    match = _PNM.match(bytes(data[:4096]))
    return (int(match[1]), int(match[2])) if match else None


_FORMATS = ((b"\xff\xd8", _jpeg), (b"\x89PNG\r\n\x1a\n", _png), (b"BM", _bmp), (b"RIFF", _webp),
            (b"II*\x00", _tiff), (b"MM\x00*", _tiff), (b"II+\x00", _tiff), (b"MM\x00+", _tiff),
            (b"GIF87a", _gif), (b"GIF89a", _gif), (b"P", _pnm))


def image_size(data) -> tuple[int, int] | None:
    """(width, height) from the header of an encoded image (bytes, memoryview or uint8 array), or None when the
    format is not one of JPEG, PNG, BMP, WebP, TIFF, GIF and PNM or the header is cut short."""
    view = memoryview(data).cast("B")
    for magic, parse in _FORMATS:
        if bytes(view[:len(magic)]) == magic:
            try:
                size = parse(view)
            except struct.error:  # a header cut short
                return None
            return None if size is None else (int(size[0]), int(size[1]))
    return None
