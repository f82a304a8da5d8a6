"""Strokes that re-segment (extension/lib/resegment.js), run in Node with the vendored
OpenCV.js on small synthetic photos with known answers: a background stroke across
part of a wrongly kept patch removes the whole patch and nothing of the subject; a
Restore stroke brings back a wrongly dropped part; the seams and the side the stroke
does not claim never change. (The flips reach the mask by canvas compositing in the
Refine page: tests/browser/test_refine.py checks them there, to the byte.)"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

RESEGMENT = Path(__file__).resolve().parents[2] / "extension" / "lib" / "resegment.js"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node")


@pytest.fixture(scope="module")
def opencv_js(tmp_path_factory) -> Path:
    from cutout.toolchain.vendor import OPENCV_JS

    (path,) = OPENCV_JS.vendor(tmp_path_factory.mktemp("opencv"))
    return path


def run_js(opencv_js: Path, body: str, **arrays: np.ndarray) -> dict:
    """Run `body` (returns a JSON-able value) with OpenCV as `cv`, the module's exports
    and `arrays` (as Uint8Arrays, flattened) in scope."""
    binds = "\n".join(f"const {name} = Uint8Array.from({json.dumps(a.ravel().tolist())});"
                      for name, a in arrays.items())
    script = f"""
import {{ createRequire }} from 'node:module';
import * as R from {json.dumps(RESEGMENT.as_uri())};
const cv = createRequire(import.meta.url)({json.dumps(str(opencv_js))});
// Not awaited: the module is a thenable that resolves to itself.
await new Promise((done) => {{ if (cv.Mat) done(); else cv.onRuntimeInitialized = done; }});
{binds}
const out = (() => {{ {body} }})();
console.log(JSON.stringify(out));
"""
    done = subprocess.run(["node", "--input-type=module"], input=script, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


H, W = 90, 120
RNG = np.random.default_rng(7)


def scene():
    """A blue disc (the subject) on a red background with a green square (background
    the model wrongly kept: alpha 255 there)."""
    yy, xx = np.mgrid[0:H, 0:W]
    disc = (xx - 80) ** 2 + (yy - 45) ** 2 < 25 ** 2
    patch = (xx >= 8) & (xx < 40) & (yy >= 20) & (yy < 60)
    rgb = np.empty((H, W, 3), np.int16)
    rgb[:] = (190, 60, 40)
    rgb[patch] = (40, 170, 50)
    rgb[disc] = (30, 60, 200)
    rgb = np.clip(rgb + RNG.integers(-20, 21, rgb.shape), 0, 255).astype(np.uint8)
    rgba = np.dstack([rgb, np.full((H, W), 255, np.uint8)])
    alpha = np.where(disc | patch, 255, 0).astype(np.uint8)
    return rgba, alpha, disc, patch


def resegment(opencv_js, rgba, alpha, stroke, erase, seams=None, elsewhere=None):
    seams = seams or {"left": False, "top": False, "right": False, "bottom": False}
    elsewhere = np.zeros(0, np.uint8) if elsewhere is None else elsewhere
    out = run_js(opencv_js, f"""
        const input = R.grabCutInput({{ rgba, alpha, stroke, width: {W}, height: {H},
          erase: {json.dumps(erase)}, seams: {json.dumps(seams)}, elsewhere }});
        if (!input) return null;
        const fg = R.grabCut(cv, input, {W});
        return {{ fg: [...fg], flips: [...R.flipsFrom(fg, alpha, {json.dumps(erase)}, stroke, {W})],
                 rows: input.rows, claimed: input.claimed }};
    """, rgba=rgba, alpha=alpha, stroke=stroke, elsewhere=elsewhere)
    if out is None:
        return None
    out["fg"] = np.array(out["fg"], np.uint8).reshape(H, W)
    out["flips"] = np.array(out["flips"], np.uint8).reshape(H, W)
    return out


def test_a_background_stroke_removes_the_whole_patch(opencv_js):
    rgba, alpha, disc, patch = scene()
    stroke = np.zeros((H, W), np.uint8)
    stroke[38:42, 14:30] = 255  # across a third of the patch
    alpha = np.where(stroke > 0, 0, alpha).astype(np.uint8)  # as the Erase brush left it
    out = resegment(opencv_js, rgba, alpha, stroke, erase=True)
    assert out["fg"][patch].mean() < 0.02, "the patch beyond the stroke was kept"
    assert out["fg"][disc].mean() > 0.98, "the subject was cut"
    assert out["flips"][patch & (stroke == 0)].mean() > 0.98 * 255
    assert not out["flips"][disc].any()
    # The stroke's colours are repeated once per pixel of the area; nothing elsewhere.
    assert out["rows"] == 2 * H


def test_only_what_the_stroke_reaches_changes(opencv_js):
    """GrabCut judges by colour: a second patch of the same colour that does not touch
    the stroked one is labelled background too, but only the stroked patch changes
    (the other may be the subject's own colour somewhere the person did not mean)."""
    rgba, alpha, disc, patch = scene()
    other = np.zeros((H, W), bool)
    other[70:84, 60:74] = True  # the same green, apart from the patch and the disc
    rgba = rgba.copy()
    rgba[other] = rgba[patch][: other.sum()]
    alpha = np.where(other, 255, alpha).astype(np.uint8)
    stroke = np.zeros((H, W), np.uint8)
    stroke[38:42, 14:30] = 255
    alpha = np.where(stroke > 0, 0, alpha).astype(np.uint8)
    out = resegment(opencv_js, rgba, alpha, stroke, erase=True)
    assert out["fg"][other].mean() < 0.5, "GrabCut kept the other patch: the test shows nothing"
    assert out["flips"][patch & (stroke == 0)].mean() > 0.98 * 255
    assert not out["flips"][other].any(), "a patch the stroke does not reach changed"
    assert not out["flips"][disc].any()


def test_a_patch_alone_in_the_area_goes_when_the_subject_is_known_elsewhere(opencv_js):
    """The area holds only the wrongly kept patch (the subject is outside it): its
    colour is all the kept side has; with the subject's colours from elsewhere the
    whole patch goes."""
    rgba, alpha, disc, patch = scene()
    alpha = np.where(patch, 255, 0).astype(np.uint8)  # the disc is outside this area
    stroke = np.zeros((H, W), np.uint8)
    stroke[38:42, 14:30] = 255
    alpha = np.where(stroke > 0, 0, alpha).astype(np.uint8)
    rgba_no_disc = rgba.copy()
    rgba_no_disc[disc] = (190, 60, 40, 255)
    subject = rgba[disc][:400]  # as the page samples the kept pixels outside the area
    out = resegment(opencv_js, rgba_no_disc, alpha, stroke, erase=True, elsewhere=subject)
    assert out["fg"][patch].mean() < 0.02, "the patch beyond the stroke was kept"
    assert out["rows"] == 2 * H + -(-out["claimed"] // W)


def test_a_restore_stroke_brings_back_the_dropped_part(opencv_js):
    rgba, _, disc, patch = scene()
    alpha = np.where(disc, 255, 0).astype(np.uint8)
    alpha[45:, :] = 0  # the model lost the disc's lower half
    lost = disc & (alpha == 0)
    stroke = np.zeros((H, W), np.uint8)
    stroke[50:54, 72:88] = 255
    alpha = np.where(stroke > 0, 255, alpha).astype(np.uint8)
    out = resegment(opencv_js, rgba, alpha, stroke, erase=False)
    assert out["fg"][lost].mean() > 0.95, "the lost half did not come back"
    assert out["fg"][patch].mean() < 0.02 and out["fg"][~disc & ~patch].mean() < 0.02
    # Restore only brings back: what was kept stays kept.
    assert out["fg"][alpha >= 128].all()


def test_an_erase_stroke_never_adds_and_seams_keep_their_labels(opencv_js):
    rgba, alpha, disc, patch = scene()
    stroke = np.zeros((H, W), np.uint8)
    stroke[38:42, 14:30] = 255
    alpha = np.where(stroke > 0, 0, alpha).astype(np.uint8)
    seams = {"left": True, "top": True, "right": True, "bottom": True}
    out = resegment(opencv_js, rgba, alpha, stroke, erase=True, seams=seams)
    assert not out["fg"][alpha < 128].any(), "an Erase stroke added pixels"
    ring = np.ones((H, W), bool)
    ring[2:-2, 2:-2] = False
    assert np.array_equal(out["fg"][ring], (alpha[ring] >= 128).astype(np.uint8))
    # A seam ring across the patch keeps those few pixels; the rest of it still goes.
    inner = patch.copy()
    inner[:, :2] = False
    assert out["fg"][inner & (stroke == 0)].mean() < 0.02


def test_nothing_to_claim_is_no_work(opencv_js):
    rgba, _, _, _ = scene()
    stroke = np.zeros((H, W), np.uint8)
    stroke[10:14, 10:20] = 255
    assert resegment(opencv_js, rgba, np.zeros((H, W), np.uint8), stroke, erase=True) is None
