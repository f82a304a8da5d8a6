"""Header-only image sizes (the engine's guard against decompression bombs)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from cutout.engine.imagesize import HEADER_BYTES, image_size


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP"])
@pytest.mark.parametrize("size", [(1, 1), (640, 480), (123, 4567)])
def test_formats(fmt, size):
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buffer, fmt)
    assert image_size(buffer.getvalue()[:HEADER_BYTES]) == size


def test_jpeg_with_big_exif_and_progressive():
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x010E] = "x" * 60000  # ImageDescription: pushes SOF far from the start
    Image.new("RGB", (300, 200)).save(buffer, "JPEG", exif=exif, progressive=True)
    assert image_size(buffer.getvalue()[:HEADER_BYTES]) == (300, 200)


def test_webp_lossless_and_alpha():
    for kwargs in ({"lossless": True}, {"lossless": False}):
        buffer = io.BytesIO()
        Image.new("RGBA", (77, 55), (1, 2, 3, 128)).save(buffer, "WEBP", **kwargs)
        assert image_size(buffer.getvalue()) == (77, 55)


@pytest.mark.parametrize("head", [b"", b"\x89PNG\r\n\x1a\n", b"<svg", b"\xff\xd8\xff\xe0\x00", b"GIF8"])
def test_unknown_or_truncated(head):
    assert image_size(head) is None


def test_formats_the_browser_cannot_decode_are_named():
    import io

    from PIL import Image

    from cutout.engine.imagesize import unsupported_format

    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "TIFF")
    assert unsupported_format(buf.getvalue()) == "TIFF"
    assert unsupported_format(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00") == "HEIC"
    assert unsupported_format(b"\xff\x0a\x00") == "JPEG XL"
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    assert unsupported_format(buf.getvalue()) is None


def test_a_png_header_with_a_bad_crc_gives_no_size():
    """Garbage behind a PNG signature must not read as a 1.1-billion-pixel image."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    good = buf.getvalue()
    assert image_size(good) == (8, 8)
    damaged = good[:16] + b"\x43\xcc\x9d\x0c\x4e\x0a\xfd\x05" + good[24:]
    assert image_size(damaged) is None
    assert image_size(good[:30]) is None  # IHDR cut before its CRC
