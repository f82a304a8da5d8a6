"""`invoke screenshots` reaches every page it shows (popup, result, Refine, batch, options)
through the built manifest and the flow a person follows, and captures real pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from cutout.headless.screenshots import SIZES, take

ROOT = Path(__file__).resolve().parents[2]


def test_screenshots_of_every_page(extension_dir, tmp_path):
    shots = take(extension_dir, ROOT / "samples", tmp_path)
    assert [p.stem for p in shots] == list(SIZES)
    for path in shots:
        with Image.open(path) as im:
            pixels = np.asarray(im.convert("RGB")).astype(float)
        width = SIZES[path.stem][0]
        assert 0.8 * width <= pixels.shape[1] <= width, (path.name, pixels.shape)
        assert pixels.std() > 10, f"{path.name} looks blank"
    # The result page shows the cut-out over the transparency checkerboard: grey and
    # white squares plus the photo's colours.
    with Image.open(tmp_path / "result.png") as im:
        colours = len(set(im.convert("RGB").get_flattened_data()))
    assert colours > 1000
