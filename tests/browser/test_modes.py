"""Every browser model runs in the extension (WASM) and matches the native
pipeline on the same input. The larger models come from the model host."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize(("mode", "image"), [("balanced", "coffee.jpg"), ("quality", "chelsea.jpg"),
                                             ("portrait", "astronaut.jpg")])
def test_mode_matches_native(browser, image_server, png_alpha, mode, image):
    from cutout.modes import get_mode, pipeline_options
    from cutout.native.pipeline import load_rgba, predict_alpha
    from cutout.toolchain.build import MODELS_DIR

    outcome = browser.remove(image_server.url(image), mode, timeout=300)
    assert outcome.state == "done", outcome.error
    expected = get_mode(mode)
    # The default profile has no WebGPU: the mode's WASM file runs.
    model = expected.model_on("wasm")
    assert outcome.result["model"] == model
    alpha = png_alpha(outcome.png)
    native = predict_alpha(MODELS_DIR / f"{model}.onnx",
                           load_rgba(image_server.folder / image), **pipeline_options(expected))
    fa, fb = alpha >= 128, native >= 128
    iou = (fa & fb).sum() / max(1, (fa | fb).sum())
    mae = np.abs(alpha.astype(float) - native).mean() / 255
    assert iou >= 0.99 and mae <= 0.01, (iou, mae)
    assert 0.05 < fa.mean() < 0.95
