"""Every kind of real image a person may right-click: colour models, bit depths,
orientation, transparency, odd shapes, formats. Each ends in a right-sized cut-out
or a specific message (docs/RELIABILITY.md)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def photo(size=(300, 200)) -> Image.Image:
    with Image.open(ROOT / "samples" / "coffee.jpg") as im:
        return im.convert("RGB").resize(size)


def save(im: Image.Image, folder: Path, name: str, **kw) -> str:
    im.save(folder / name, **kw)
    return name


def cases(folder: Path) -> dict[str, tuple[str, tuple[int, int]]]:
    """name -> (file, size a person sees (w, h))."""
    base = photo()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90° clockwise: portrait
    rgba = base.convert("RGBA")
    alpha = np.zeros((200, 300), np.uint8)
    alpha[:, 150:] = 255  # the left half is already transparent
    rgba.putalpha(Image.fromarray(alpha))
    sixteen = Image.fromarray((np.asarray(base.convert("L")).astype(np.uint16) * 257))
    return {
        "cmyk-jpeg": (save(base.convert("CMYK"), folder, "cmyk.jpg"), (300, 200)),
        "grey-jpeg": (save(base.convert("L"), folder, "grey.jpg"), (300, 200)),
        "16-bit-png": (save(sixteen, folder, "grey16.png"), (300, 200)),
        "palette-png": (save(base.convert("P", palette=Image.Palette.ADAPTIVE), folder, "palette.png"), (300, 200)),
        "exif-rotated": (save(base, folder, "rotated.jpg", exif=exif.tobytes()), (200, 300)),
        "sliver": (save(photo((4, 4000)), folder, "sliver.png"), (4, 4000)),
        "webp": (save(base, folder, "photo.webp"), (300, 200)),
        "bmp": (save(base, folder, "photo.bmp"), (300, 200)),
        "with-alpha": (save(rgba, folder, "transparent.png"), (300, 200)),
    }


@pytest.fixture(scope="module")
def inputs(image_server):
    return cases(image_server.folder)


@pytest.mark.parametrize("case", ["cmyk-jpeg", "grey-jpeg", "16-bit-png", "palette-png",
                                  "exif-rotated", "sliver", "webp", "bmp", "with-alpha"])
def test_image_kind_gives_a_right_sized_cutout(browser, image_server, png_alpha, inputs, case):
    name, (w, h) = inputs[case]
    outcome = browser.remove(image_server.url(name), "fast")
    assert outcome.state == "done", f"{case}: {outcome.error}"
    assert (outcome.result["width"], outcome.result["height"]) == (w, h)
    alpha = png_alpha(outcome.png)
    assert alpha.shape == (h, w)
    if case == "with-alpha":  # never less transparent than the input
        assert alpha[:, :150].max() == 0
    if case == "exif-rotated":  # upright: the same mask as for the photo turned by hand
        turned = browser.remove(image_server.url(save(
            photo().transpose(Image.Transpose.ROTATE_270), image_server.folder, "turned.png")), "fast")
        other = png_alpha(turned.png)
        fa, fb = alpha >= 128, other >= 128
        assert (fa & fb).sum() / max(1, (fa | fb).sum()) >= 0.95


def test_tiff_is_named_as_unsupported(browser, image_server):
    save(photo(), image_server.folder, "photo.tiff")
    outcome = browser.remove(image_server.url("photo.tiff"), "fast")
    assert outcome.state == "failed"
    assert "TIFF" in outcome.error and "PNG or JPEG" in outcome.error


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_truncated_file_is_a_clear_failure_or_a_partial_image(browser, image_server, fmt):
    buf = io.BytesIO()
    photo().save(buf, fmt)
    name = f"truncated.{fmt.lower()}"
    (image_server.folder / name).write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    outcome = browser.remove(image_server.url(name), "fast")
    if outcome.state == "failed":
        assert "could not be decoded" in outcome.error
    else:  # Chromium shows truncated images as far as they go: so does Cutout
        assert (outcome.result["width"], outcome.result["height"]) == (300, 200)
