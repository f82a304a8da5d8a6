"""Keep subject's selection logic (extension/lib/selection.js), run in Node on small
synthetic masks with known answers: which pixels a click selects, how a selection
grows, and what keeping or adding one does to the alpha."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

SELECTION = Path(__file__).resolve().parents[2] / "extension" / "lib" / "selection.js"
LOW = 24  # refine.js CLEAN_LOW

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node")


def run_js(body: str, **inputs) -> dict:
    """Run `body` (a JS module body that returns a JSON-able value) with `inputs` bound
    as typed arrays or numbers, and the module's exports in scope."""
    binds = []
    for name, value in inputs.items():
        if isinstance(value, np.ndarray):
            binds.append(f"const {name} = Uint8Array.from({json.dumps(value.ravel().tolist())});")
        else:
            binds.append(f"const {name} = {json.dumps(value)};")
    script = (f"import {{ grow, keepRegion, regionAt }} from {json.dumps(SELECTION.as_uri())};\n"
              + "\n".join(binds) + f"\nconst out = (() => {{ {body} }})();\n"
              "console.log(JSON.stringify(out));")
    done = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def rgba(alpha: np.ndarray) -> np.ndarray:
    out = np.zeros(alpha.shape + (4,), np.uint8)
    out[..., 3] = alpha
    return out


def two_squares() -> np.ndarray:
    """12x10: a solid square on the left, one on the right, a faint (<= LOW) bridge
    between them, a faint pixel touching the left square and faint haze far from both."""
    a = np.zeros((10, 12), np.uint8)
    a[2:6, 1:4] = 255
    a[2:6, 8:11] = 200
    a[3, 4:8] = LOW          # the faint bridge: does not join the squares
    a[9, 6] = 10             # haze far from both
    return a


def region(alpha: np.ndarray, x: int, y: int):
    h, w = alpha.shape
    got = run_js("const r = regionAt(px, w, h, x, y, low); return r && Array.from(r);",
                 px=rgba(alpha), w=w, h=h, x=x, y=y, low=LOW)
    return None if got is None else np.array(got, np.uint8).reshape(h, w)


def test_a_click_selects_only_the_part_under_it():
    a = two_squares()
    left = region(a, 2, 3)
    assert np.array_equal(left.astype(bool), a * (np.arange(12) < 6) > LOW)
    right = region(a, 9, 4)
    assert np.array_equal(right.astype(bool), a * (np.arange(12) >= 6) > LOW)
    assert region(a, 6, 3) is None  # on the faint bridge: not part of the cut-out
    assert region(a, 0, 0) is None  # background


def test_diagonal_neighbours_join_but_the_image_edge_does_not_wrap():
    a = np.zeros((4, 4), np.uint8)
    a[0, 0] = a[1, 1] = 255  # diagonal neighbours: one 8-connected part
    a[2, 3] = 255            # the last pixel of row 2 is next to row 3's first in memory,
    a[3, 0] = 255            # not in the image
    assert np.array_equal(region(a, 0, 0), (a == 255) & (np.arange(4) < 2)[:, None])
    got = region(a, 3, 2)
    assert got.sum() == 1 and got[2, 3]


def test_grow_is_a_square_window_clipped_at_the_border():
    w, h = 7, 5
    m = np.zeros((h, w), np.uint8)
    m[2, 3] = 1
    m[0, 0] = 1
    got = np.array(run_js("return Array.from(grow(m, w, h, 1));", m=m, w=w, h=h), np.uint8).reshape(h, w)
    want = np.zeros_like(m)
    want[1:4, 2:5] = 1
    want[0:2, 0:2] = 1
    assert np.array_equal(got, want)


def keep(alpha: np.ndarray, base: np.ndarray, x: int, y: int, add: bool) -> np.ndarray:
    h, w = alpha.shape
    got = run_js("const r = regionAt(base, w, h, x, y, low); const near = grow(r, w, h, 2);"
                 "keepRegion(cur, base, r, near, add, low);"
                 "return Array.from(cur.filter((_, i) => i % 4 === 3));",
                 cur=rgba(alpha), base=rgba(base), w=w, h=h, x=x, y=y, add=add, low=LOW)
    return np.array(got, np.uint8).reshape(h, w)


def test_keeping_one_part_drops_the_others_but_keeps_its_soft_edge():
    a = two_squares()
    a[1, 2] = 12  # a faint pixel on the left square's edge (its halo)
    kept = keep(a, a, 2, 3, add=False)
    want = a.copy()
    want[:, 6:] = 0          # the right square and the haze go
    want[3, 6:8] = 0         # the bridge beyond the halo goes; within 2 px it stays
    assert np.array_equal(kept, want), kept


def test_adding_brings_a_dropped_part_back_exactly():
    a = two_squares()
    kept = keep(a, a, 2, 3, add=False)
    both = keep(kept, a, 9, 4, add=True)  # Shift+click where the right square was
    want = kept.copy()
    want[2:6, 8:11] = a[2:6, 8:11]
    want[3, 6:8] = a[3, 6:8]  # its faint halo comes back with it
    assert np.array_equal(both, want), both
