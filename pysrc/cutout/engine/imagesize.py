"""Image dimensions from the first bytes of a file, before anything is decoded.

A 30000 x 30000 PNG of one colour is a few hundred KB but decodes to 3.6 GB:
the engine refuses such files from their header instead of letting the
browser try. Pure Python (no numpy under Pyodide); unknown formats return
None and are left to the browser's decoder.
"""

from __future__ import annotations

import struct
import zlib

HEADER_BYTES = 1 << 18  # JPEG puts SOF after EXIF/ICC segments, which can be large


def unsupported_format(head: bytes) -> str | None:
    """The name of an image format the browser cannot decode, known by its magic
    bytes (whatever the server calls it), or None."""
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1"):
        return "HEIC"
    if head[:2] == b"\xff\x0a" or head[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n":
        return "JPEG XL"
    if head[:4] == b"8BPS":
        return "Photoshop (PSD)"
    return None


def image_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) read from the header bytes, or None if unknown/truncated."""
    try:
        if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
            # A damaged header (its CRC does not match) says nothing about the size:
            # the decoder then names the file damaged instead of "too large".
            if len(head) < 33 or zlib.crc32(head[12:29]) != struct.unpack(">I", head[29:33])[0]:
                return None
            return struct.unpack(">II", head[16:24])
        if head[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", head[6:10])
        if head.startswith(b"BM"):
            width, height = struct.unpack("<ii", head[18:26])
            return width, abs(height)
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return _webp(head)
        if head.startswith(b"\xff\xd8"):
            return _jpeg(head)
    except struct.error:
        return None
    return None


def _webp(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8X":
        w = int.from_bytes(head[24:27], "little") + 1
        h = int.from_bytes(head[27:30], "little") + 1
        return w, h
    if chunk == b"VP8L":
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", head[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None


# Start-of-frame markers (baseline, progressive, lossless...), not DHT/JPG/DAC.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(head: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 4 <= len(head):
        if head[pos] != 0xFF:
            return None
        marker = head[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            pos += 2
            continue
        (length,) = struct.unpack(">H", head[pos + 2:pos + 4])
        if marker in _SOF:
            height, width = struct.unpack(">HH", head[pos + 5:pos + 9])
            return width, height
        pos += 2 + length
    return None
