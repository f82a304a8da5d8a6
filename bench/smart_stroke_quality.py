"""How well an Erase stroke that re-segments (extension/lib/resegment.js) fixes a
wrongly kept patch on real photos, and how much of the subject it takes with it.

Areas of 365 x 275 px (about RESEGMENT_PIXELS, what the Refine page hands GrabCut)
from the pinned scikit-image photos (not davis345: nothing here may be tuned on the
evaluation set), two per photo and stroke kind. The cut-out is native ISNet's mask
with a planted error: for Erase a disc of background 20-30 px from the subject (so it
often touches it) set to kept, for Restore a disc of the subject 20-30 px inside it
set to dropped; the stroke is a short line across the disc on the wrong side only,
already painted (as the brush leaves it). Each area
then runs, in Node with the vendored OpenCV.js, exactly the page's code:
grabCutInput, grabCut, flipsFrom. Reported per area and per kind: the share of the
planted error fixed, the share of the other side changed with it (Erase: of the
subject; Restore: of the background) and GrabCut's ms (Node; the browser takes about
1.7x).

    python bench/smart_stroke_quality.py [--photos N] [--out bench/results/<date>-smart-stroke.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
RESEGMENT = ROOT / "extension" / "lib" / "resegment.js"
W, H = 365, 275
DISC, STROKE_HALF = 32, 20

NODE_EVAL = """
import { createRequire } from 'node:module';
import fs from 'node:fs';
import * as R from %(resegment)s;
const cv = createRequire(import.meta.url)(%(opencv)s);
await new Promise((done) => { if (cv.Mat) done(); else cv.onRuntimeInitialized = done; });
const [W, H, dir] = [%(w)d, %(h)d, %(dir)s];
const seams = { left: true, top: true, right: true, bottom: true };
const rows = [];
for (const { name, erase } of JSON.parse(fs.readFileSync(`${dir}/names.json`))) {
  const read = (k) => new Uint8Array(fs.readFileSync(`${dir}/${name}-${k}.bin`));
  const [rgba, alpha, stroke, model, elsewhere] = ['rgba', 'alpha', 'stroke', 'model', 'elsewhere'].map(read);
  const input = R.grabCutInput({ rgba, alpha, stroke, width: W, height: H, erase, seams, elsewhere });
  const started = performance.now();
  const fg = R.grabCut(cv, input, W);
  const ms = performance.now() - started;
  const flips = R.flipsFrom(fg, alpha, erase, stroke, W);
  // wrong: where the cut-out disagrees with the model's own mask (the planted error);
  // other: the side the stroke must leave alone (Erase: the subject; Restore: background).
  let wrong = 0, fixed = 0, other = 0, collateral = 0;
  for (let i = 0; i < W * H; i++) {
    const isWrong = (alpha[i] >= 128) !== (model[i] >= 128);
    const isOther = erase ? model[i] >= 128 : model[i] < 128;
    wrong += isWrong; other += isOther;
    if (flips[i]) { if (isWrong) fixed++; else collateral++; }
  }
  rows.push({ area: name, stroke: erase ? 'erase' : 'restore', fixed: fixed / wrong,
              collateral: collateral / Math.max(1, other), grabcut_ms: ms });
}
console.log(JSON.stringify(rows));
"""


def _planted(alpha: np.ndarray, rgba: np.ndarray, rng: np.random.Generator, erase: bool,
             name: str, folder: Path) -> list[dict]:
    """Two areas of `rgba` with a planted error: Erase, a disc of background beside
    the subject set to kept; Restore, a disc of the subject set to dropped. The stroke
    crosses the disc on the wrong side only and is already painted, as the brush
    leaves it."""
    kept = alpha >= 128
    side = ~kept if erase else kept  # where the disc's centre lies
    near = np.argwhere((lambda d: (d > 20) & (d < 30))(ndimage.distance_transform_edt(side)))
    cases = []
    for trial in range(2 if len(near) else 0):
        py, px = near[rng.integers(len(near))]
        y0 = int(np.clip(py - H // 2, 0, rgba.shape[0] - H))
        x0 = int(np.clip(px - W // 2, 0, rgba.shape[1] - W))
        own = alpha[y0:y0 + H, x0:x0 + W]
        yy, xx = np.mgrid[0:H, 0:W]
        cy, cx = py - y0, px - x0
        wrong = own.copy()
        wrong[(yy - cy) ** 2 + (xx - cx) ** 2 < DISC ** 2] = 0 if not erase else 255
        stroke = np.zeros((H, W), np.uint8)
        stroke[max(0, cy - 3):cy + 3, max(0, cx - STROKE_HALF):cx + STROKE_HALF] = 255
        stroke[(own >= 128) == erase] = 0  # on the wrong side only
        wrong[stroke > 0] = 0 if erase else 255
        # The claimed side's colours from outside the area (Erase: the subject).
        outside = kept.copy() if erase else ~kept
        outside[y0:y0 + H, x0:x0 + W] = False
        elsewhere = rgba[outside][rng.permutation(int(outside.sum()))[:30000]]
        case = f"{name}-{'erase' if erase else 'restore'}-{trial}"
        for key, array in (("rgba", rgba[y0:y0 + H, x0:x0 + W]), ("alpha", wrong),
                           ("stroke", stroke), ("model", own), ("elsewhere", elsewhere)):
            np.ascontiguousarray(array, np.uint8).tofile(folder / f"{case}-{key}.bin")
        cases.append({"name": case, "erase": erase})
    return cases


def make_areas(folder: Path, model: Path, limit: int | None = None) -> list[dict]:
    from cutout.native.pipeline import load_rgba, predict_alpha
    from cutout.toolchain.quantize import calibration_photos

    photos = []
    for photo in calibration_photos()[:limit]:
        rgba = load_rgba(str(photo))
        if rgba.shape[0] >= H and rgba.shape[1] >= W:
            photos.append((photo.stem, rgba, predict_alpha(str(model), rgba)))
    cases = []
    for erase, seed in ((True, 1), (False, 2)):
        rng = np.random.default_rng(seed)
        for name, rgba, alpha in photos:
            cases += _planted(alpha, rgba, rng, erase, name, folder)
    (folder / "names.json").write_text(json.dumps(cases))
    return cases


def measure(model: Path, limit: int | None = None) -> tuple[list[dict], dict]:
    """Rows per area and a summary per stroke kind, on the first `limit` photos."""
    from cutout.toolchain.vendor import OPENCV_JS

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_areas(folder, model, limit)
        (opencv,) = OPENCV_JS.vendor(folder / "opencv")
        script = NODE_EVAL % {"resegment": json.dumps(RESEGMENT.as_uri()),
                              "opencv": json.dumps(str(opencv)), "w": W, "h": H,
                              "dir": json.dumps(str(folder))}
        done = subprocess.run(["node", "--input-type=module"], input=script, text=True,
                              capture_output=True, timeout=600, check=True)
    rows = json.loads(done.stdout)
    summary = {}
    for kind in ("erase", "restore"):
        of = [r for r in rows if r["stroke"] == kind]
        summary[kind] = {
            "areas": len(of),
            "fixed_mean": float(np.mean([r["fixed"] for r in of])),
            "fixed_min": float(np.min([r["fixed"] for r in of])),
            "collateral_mean": float(np.mean([r["collateral"] for r in of])),
            "collateral_max": float(np.max([r["collateral"] for r in of])),
            "grabcut_ms_median": float(np.median([r["grabcut_ms"] for r in of])),
        }
    return rows, summary


def main() -> None:
    from cutout.toolchain.build import MODELS_DIR

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--photos", type=int, default=None, help="only the first N photos")
    args = parser.parse_args()
    # Native ISNet as `invoke build` writes it.
    rows, summary = measure(MODELS_DIR / "isnet.onnx", args.photos)
    for r in rows:
        print(f"{r['area']:>30}  planted error fixed {100 * r['fixed']:5.1f} %  other side "
              f"changed {100 * r['collateral']:5.1f} %  {r['grabcut_ms']:5.0f} ms")
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.write_text(json.dumps({"date": datetime.now(timezone.utc).isoformat(
            timespec="seconds"), "areas": rows, **summary}, indent=1))


if __name__ == "__main__":
    main()
