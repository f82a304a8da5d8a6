"""How well an Erase stroke that re-segments (extension/lib/resegment.js) fixes a
wrongly kept patch on real photos, and how much of the subject it takes with it.

Areas of 365 x 275 px (about RESEGMENT_PIXELS, what the Refine page hands GrabCut)
from the pinned scikit-image photos (not davis345: nothing here may be tuned on the
evaluation set), two per photo. The cut-out is native ISNet's mask; the "wrongly kept
patch" is a disc of background 20-30 px from the subject (so it often touches it),
set to kept; the stroke is a short line across the disc, off the subject, already
erased (as the brush leaves it). Each area
then runs, in Node with the vendored OpenCV.js, exactly the page's code:
grabCutInput, grabCut, flipsFrom. Reported per area and overall: the share of the
patch removed and the share of the model's subject removed with it, and GrabCut's ms
(Node; the browser takes about 1.7x).

    python bench/smart_stroke_quality.py [--out bench/results/<date>-smart-stroke.json]
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
for (const name of JSON.parse(fs.readFileSync(`${dir}/names.json`))) {
  const read = (k) => new Uint8Array(fs.readFileSync(`${dir}/${name}-${k}.bin`));
  const [rgba, alpha, stroke, model, elsewhere] = ['rgba', 'alpha', 'stroke', 'model', 'elsewhere'].map(read);
  const input = R.grabCutInput({ rgba, alpha, stroke, width: W, height: H, erase: true, seams, elsewhere });
  const started = performance.now();
  const fg = R.grabCut(cv, input, W);
  const ms = performance.now() - started;
  const flips = R.flipsFrom(fg, alpha, true, stroke, W);
  let patch = 0, removed = 0, subject = 0, lost = 0;
  for (let i = 0; i < W * H; i++) {
    const wrong = alpha[i] >= 128 && model[i] < 128;
    patch += wrong; subject += model[i] >= 128;
    if (flips[i]) { if (wrong) removed++; else lost++; }
  }
  rows.push({ area: name, patch_removed: removed / patch, subject_lost: lost / Math.max(1, subject), grabcut_ms: ms });
}
console.log(JSON.stringify(rows));
"""


def make_areas(folder: Path) -> list[str]:
    from cutout.native.pipeline import load_rgba, predict_alpha
    from cutout.toolchain.quantize import calibration_photos

    model = ROOT / "build" / "models" / "isnet.onnx"  # written by `invoke build`
    rng = np.random.default_rng(1)
    names = []
    for photo in calibration_photos():
        rgba = load_rgba(str(photo))
        if rgba.shape[0] < H or rgba.shape[1] < W:
            continue
        alpha = predict_alpha(str(model), rgba)
        kept = alpha >= 128
        near = np.argwhere((lambda d: (d > 20) & (d < 30))(ndimage.distance_transform_edt(~kept)))
        if len(near) == 0:
            continue
        for trial in range(2):
            py, px = near[rng.integers(len(near))]
            y0 = int(np.clip(py - H // 2, 0, rgba.shape[0] - H))
            x0 = int(np.clip(px - W // 2, 0, rgba.shape[1] - W))
            own = alpha[y0:y0 + H, x0:x0 + W]
            yy, xx = np.mgrid[0:H, 0:W]
            cy, cx = py - y0, px - x0
            wrong = own.copy()
            wrong[(yy - cy) ** 2 + (xx - cx) ** 2 < DISC ** 2] = 255
            stroke = np.zeros((H, W), np.uint8)
            stroke[max(0, cy - 3):cy + 3, max(0, cx - STROKE_HALF):cx + STROKE_HALF] = 255
            stroke[own >= 128] = 0
            wrong[stroke > 0] = 0  # as the Erase brush left it before the stroke re-segments
            outside = kept.copy()
            outside[y0:y0 + H, x0:x0 + W] = False
            elsewhere = rgba[outside][rng.permutation(int(outside.sum()))[:30000]]
            name = f"{photo.stem}-{trial}"
            for key, array in (("rgba", rgba[y0:y0 + H, x0:x0 + W]), ("alpha", wrong),
                               ("stroke", stroke), ("model", own), ("elsewhere", elsewhere)):
                np.ascontiguousarray(array, np.uint8).tofile(folder / f"{name}-{key}.bin")
            names.append(name)
    (folder / "names.json").write_text(json.dumps(names))
    return names


def main() -> None:
    from cutout.toolchain.vendor import OPENCV_JS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_areas(folder)
        (opencv,) = OPENCV_JS.vendor(folder / "opencv")
        script = NODE_EVAL % {"resegment": json.dumps(RESEGMENT.as_uri()),
                              "opencv": json.dumps(str(opencv)), "w": W, "h": H,
                              "dir": json.dumps(str(folder))}
        done = subprocess.run(["node", "--input-type=module"], input=script, text=True,
                              capture_output=True, timeout=600, check=True)
    rows = json.loads(done.stdout)
    for r in rows:
        print(f"{r['area']:>22}  patch removed {100 * r['patch_removed']:5.1f} %  "
              f"subject lost {100 * r['subject_lost']:5.1f} %  {r['grabcut_ms']:5.0f} ms")
    summary = {
        "patch_removed_mean": float(np.mean([r["patch_removed"] for r in rows])),
        "patch_removed_min": float(np.min([r["patch_removed"] for r in rows])),
        "subject_lost_mean": float(np.mean([r["subject_lost"] for r in rows])),
        "subject_lost_max": float(np.max([r["subject_lost"] for r in rows])),
        "grabcut_ms_median": float(np.median([r["grabcut_ms"] for r in rows])),
    }
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.write_text(json.dumps({"date": datetime.now(timezone.utc).isoformat(
            timespec="seconds"), "areas": rows, **summary}, indent=1))


if __name__ == "__main__":
    main()
