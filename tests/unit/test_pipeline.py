"""Native pipeline pieces that need no model."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cutout.native.pipeline import MAX_WORK_SIDE, load_rgba, work_size


@pytest.mark.parametrize(
    "w,h,max_side,expected",
    [
        (1, 1, 2048, (1, 1)),
        (12000, 9000, 2048, (2048, 1536)),
        (9000, 12000, 2048, (1536, 2048)),
        (640, 480, 2048, (640, 480)),  # small: unchanged
        (2048, 2048, 2048, (2048, 2048)),  # exactly at the limit: unchanged
        (100_000, 3, 2048, (2048, 1)),  # never collapses to 0 px
        (4000, 3000, 1000, (1000, 750)),
    ],
)
def test_work_size(w, h, max_side, expected):
    assert work_size(w, h, max_side) == expected


def test_work_size_keeps_aspect():
    ww, wh = work_size(4032, 3024, MAX_WORK_SIDE)
    assert max(ww, wh) == MAX_WORK_SIDE
    assert abs(ww / wh - 4032 / 3024) < 1e-3


def _jpeg(w: int, h: int, orientation: int | None = None) -> bytes:
    im = Image.new("RGB", (w, h), (10, 200, 30))
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


def test_load_rgba_applies_exif_rotation():
    # Stored 40 wide x 20 high, tagged "rotate 90 CW": the user sees 20 x 40.
    rgba = load_rgba(_jpeg(40, 20, orientation=6))
    assert rgba.shape == (40, 20, 4) and rgba.dtype == np.uint8
    assert (rgba[..., 3] == 255).all()
    assert load_rgba(_jpeg(40, 20)).shape == (20, 40, 4)


def test_load_rgba_from_path_and_grey(tmp_path):
    p = tmp_path / "g.png"
    Image.new("L", (5, 3), 77).save(p)
    rgba = load_rgba(p)
    assert rgba.shape == (3, 5, 4)
    assert (rgba[..., :3] == 77).all() and (rgba[..., 3] == 255).all()


def test_model_input_size_rules():
    from cutout.modes import model_input_size

    assert model_input_size(854, 480, 1024) == (1024, 1024)  # squashed square, as trained
    assert model_input_size(1, 1, 1024) == (1024, 1024)
    assert model_input_size(4000, 3000, 1000) == (992, 992)  # multiples of 32
    assert model_input_size(10, 10, 8) == (32, 32)  # never below one 32-px block
    assert model_input_size(854, 480, 512, keep_aspect=True) == (288, 512)
    assert model_input_size(480, 854, 512, keep_aspect=True) == (512, 288)


def test_every_mode_names_a_model_and_unknown_modes_fail():
    import pytest

    from cutout.modes import DEFAULT_MODE, MODES, get_mode, mode_labels

    assert DEFAULT_MODE in mode_labels() and list(mode_labels())[1:] == list(MODES)
    assert {m.model for m in MODES.values()} >= {"u2netp"}
    with pytest.raises(ValueError, match="unknown mode"):
        get_mode("turbo")
