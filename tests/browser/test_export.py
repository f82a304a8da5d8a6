"""The exported PNG: the compose graphs in the real extension make the same full-size
cut-out as the native pipeline (refined edge, decontaminated soft-edge colours), at
every size: they run in strips of rows.

The compose graph's quality against known answers is tested natively
(tests/unit/test_compose.py); here, that the extension really runs it."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def decode_rgba(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.mode == "RGBA", (image.format, image.mode)
    return np.asarray(image)


def test_full_size_export_matches_the_native_compose(browser, image_server):
    from cutout.native.pipeline import load_rgba, predict_cutout
    from cutout.toolchain.build import MODELS_DIR

    # A 9 MP photo: the model sees 320x320, the export is 3000x3000.
    path = image_server.folder / "astronaut-9mp.jpg"
    Image.open(image_server.folder / "astronaut.jpg").convert("RGB").resize(
        (3000, 3000), Image.Resampling.LANCZOS).save(path, quality=92)
    outcome = browser.remove(image_server.url(path.name), "fast")
    assert outcome.state == "done", outcome.error
    ours = decode_rgba(outcome.png)
    assert ours.shape == (3000, 3000, 4)

    photo = load_rgba(path)
    native = predict_cutout(MODELS_DIR / "u2netp-wasm.onnx", photo)
    a, b = ours[..., 3], native[..., 3]
    fa, fb = a >= 128, b >= 128
    assert (fa & fb).sum() / (fa | fb).sum() >= 0.99
    assert np.abs(a.astype(float) - b).mean() / 255 <= 0.01

    soft = (b > 0) & (b < 255)
    assert soft.mean() > 0.01  # the astronaut's edge and hair: a real soft band
    weight = b[soft] / 255.0  # what a colour error shows after compositing

    def shown_error(rgb: np.ndarray) -> float:
        return float((np.abs(rgb[soft].astype(float) - native[..., :3][soft]).mean(-1)
                      * weight).mean())

    # The native export moves soft-edge colours away from the photo's (old background
    # removed: ~6 levels as shown, measured); the extension's export must match it,
    # not the photo. (Canvas stores premultiplied colour: faint pixels round a little.)
    moved = shown_error(photo[..., :3])
    assert moved > 2.0, moved
    assert shown_error(ours[..., :3]) < 0.25 * moved, (shown_error(ours[..., :3]), moved)
    # Opaque pixels are the photo's own.
    opaque = (a == 255) & (b == 255)
    assert np.abs(ours[..., :3][opaque].astype(int) - photo[..., :3][opaque]).max() <= 2


def test_a_17_mp_photo_gets_refined_edges_too(browser, image_server):
    """Above 16 MP the export used to fall back to a plain stretched mask (the one-call
    compose graph did not fit the WASM heap); in strips, every size is refined, and the
    extension's cut-out is the native one."""
    from cutout.native.pipeline import load_rgba, predict_cutout
    from cutout.toolchain.build import MODELS_DIR

    path = image_server.folder / "wide-17mp.jpg"
    Image.open(image_server.folder / "coffee.jpg").convert("RGB").resize(
        (4800, 3600), Image.Resampling.BILINEAR).save(path, quality=85)
    outcome = browser.remove(image_server.url(path.name), "fast")
    assert outcome.state == "done", outcome.error
    assert not any("stretched" in n for n in outcome.result["notes"]), outcome.result["notes"]
    ours = decode_rgba(outcome.png)
    assert ours.shape == (3600, 4800, 4)
    native = predict_cutout(MODELS_DIR / "u2netp-wasm.onnx", load_rgba(path))
    a, b = ours[..., 3], native[..., 3]
    fa, fb = a >= 128, b >= 128
    assert 0.05 < fb.mean() < 0.95
    assert (fa & fb).sum() / (fa | fb).sum() >= 0.99
    assert np.abs(a.astype(float) - b).mean() / 255 <= 0.01
    # Refined, not stretched: the soft band is the guided filter's (thin, following the
    # photo), and where both are opaque the colours are the photo's.
    opaque = (a == 255) & (b == 255)
    assert np.abs(ours[..., :3][opaque].astype(int) - native[..., :3][opaque]).max() <= 2


def test_a_big_photo_shows_how_far_its_cut_out_is(browser, image_server):
    """A 24 MP photo composes in ~24 strips for a few seconds: the result page says how
    far it is ("Cutting out… 40 %"), not a still spinner."""
    from cutout.headless.chromium import WAIT_FOR_STATE

    path = image_server.folder / "big-24mp.jpg"
    Image.open(image_server.folder / "coffee.jpg").convert("RGB").resize(
        (5657, 4243), Image.Resampling.BILINEAR).save(path, quality=85)
    job = browser.start_job(image_server.url(path.name), "fast")
    driver = browser.driver
    driver.switch_to.new_window("tab")
    try:
        driver.get(job["url"])
        driver.execute_script("""
          const stage = document.getElementById('stage');
          window.__stages = [stage.textContent];
          new MutationObserver(() => window.__stages.push(stage.textContent))
            .observe(stage, {childList: true, characterData: true, subtree: true});""")
        assert driver.execute_async_script(WAIT_FOR_STATE, 180_000) == "done"
        shown = driver.execute_script("return window.__stages")
        percents = [int(t.split()[-2]) for t in shown
                    if t.startswith("Cutting out…") and t.endswith(" %")]
        assert percents and percents == sorted(percents) and percents[-1] == 100, shown
    finally:
        driver.close()
        driver.switch_to.window(browser.home)
