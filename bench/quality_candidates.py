"""Research: the candidates for Quality mode, scored on davis345 against Balanced.

    python bench/quality_candidates.py [--every 5] [--start 0] [--model isnet]

Every candidate starts from the same first pass (ISNet at 1024², the Balanced feed)
and ends in the same compose graph as the product's export, so only the candidate
differs. Candidates (fixed before measuring, none tuned on these photos):

- mirror, mean of probabilities / mean of logits: a second pass on the mirrored photo;
- crop: a second pass on the crop around the first pass's foreground (alpha >= 128,
  margin 10 % or 25 % of the box, threshold 128 or 32), merged back; "crop-small" only
  when that box covers < 20 % of the photo; crop + mirror; the crop averaged with the
  first pass.

Prints one row per candidate and the paired difference to Balanced (mean and
standard error over photos) and writes bench/results/<date>-quality-candidates.json.
The crop merge here is numpy (research only); the shipped mirror pass is a graph
(cutout.toolchain.passes), which this script's "mirror-logit" reproduces.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pysrc"))

from cutout.evaluate import DAVIS, RESULTS  # noqa: E402
from cutout.native import metrics  # noqa: E402
from cutout.native.pipeline import _resize_session, compose, get_session, load_rgba  # noqa: E402
from cutout.toolchain.build import MODELS_DIR  # noqa: E402

SIDE = 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--model", default="isnet")
    args = ap.parse_args()
    if not (DAVIS / "images").is_dir():
        print(f"skipped: {DAVIS} is absent")
        return
    session = get_session(MODELS_DIR / f"{args.model}.onnx")
    size = np.array((SIDE, SIDE), np.int32)

    def mask(rgba: np.ndarray) -> np.ndarray:
        (feed,) = _resize_session().run(None, {"rgba": rgba[None], "size": size})
        return session.run(["alpha"], {"rgba": feed, "size": size})[0][0]

    def mirrored(rgba: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(mask(np.ascontiguousarray(rgba[:, ::-1]))[:, ::-1])

    ids = [p.stem for p in sorted((DAVIS / "images").glob("*.jpg"))][args.start::args.every]
    scores: dict[str, list[tuple[float, float, float]]] = {}
    for n, image_id in enumerate(ids):
        rgba = load_rgba(DAVIS / "images" / f"{image_id}.jpg")
        gt = np.asarray(Image.open(DAVIS / "masks" / f"{image_id}.png").convert("L"))
        h, w = rgba.shape[:2]
        first = mask(rgba)
        second = mirrored(rgba)
        masks = {"balanced": first, "mirror-mean": _mean(first, second),
                 "mirror-logit": _logit_mean(first, second)}
        full = _stretch(first, w, h)
        for thr, margin in ((128, 0.1), (32, 0.1), (128, 0.25)):
            box = _box(full, thr, margin)
            merged = full.copy()
            if box:
                y0, y1, x0, x1 = box
                crop = np.ascontiguousarray(rgba[y0:y1, x0:x1])
                merged[y0:y1, x0:x1] = _stretch(mask(crop), x1 - x0, y1 - y0)
                if (thr, margin) == (128, 0.1):
                    both = _stretch(masks["mirror-mean"], w, h)
                    both[y0:y1, x0:x1] = _stretch(_mean(mask(crop), mirrored(crop)), x1 - x0, y1 - y0)
                    masks["crop+mirror"] = both
                    masks["crop, averaged with the first pass"] = _mean(merged, full)
            masks[f"crop thr {thr} margin {margin}"] = merged
            if (thr, margin) == (128, 0.25):
                y0, y1, x0, x1 = box or (0, h, 0, w)
                small = box and (y1 - y0) * (x1 - x0) < 0.2 * h * w
                masks["crop-small (box < 20 %)"] = merged if small else full
        for name, m in masks.items():
            alpha = compose(rgba, m)[..., 3]
            scores.setdefault(name, []).append(
                (metrics.iou(alpha, gt), metrics.boundary_f(alpha, gt), metrics.mae(alpha, gt)))
        if n % 10 == 0:
            print(f"{n}/{len(ids)}", flush=True)

    base = np.array(scores["balanced"])
    rows = []
    for name, values in scores.items():
        r = np.array(values)
        d = r - base
        se = d.std(axis=0) / np.sqrt(len(d))
        rows.append({"candidate": name, "images": len(r), "iou_mean": round(r[:, 0].mean(), 4),
                     "boundary_f": round(r[:, 1].mean(), 4), "mae": round(r[:, 2].mean(), 4),
                     "iou_worst5": round(metrics.worst_mean(r[:, 0], 0.05), 4),
                     "d_iou": round(d[:, 0].mean(), 4), "d_iou_se": round(se[0], 4),
                     "d_bf": round(d[:, 1].mean(), 4), "d_bf_se": round(se[1], 4)})
        print(f"{name:36s} IoU {r[:, 0].mean():.4f} BF {r[:, 1].mean():.4f} MAE {r[:, 2].mean():.4f}"
              f"  dIoU {d[:, 0].mean():+.4f}±{se[0]:.4f} dBF {d[:, 1].mean():+.4f}±{se[1]:.4f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{dt.date.today()}-quality-candidates-{args.model}-every{args.every}-from{args.start}.json"
    out.write_text(json.dumps({"model": args.model, "subset": f"every {args.every}th from {args.start}",
                               "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")


def _stretch(m: np.ndarray, w: int, h: int) -> np.ndarray:
    return np.array(Image.fromarray(m).resize((w, h), Image.Resampling.BILINEAR))


def _mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ((a.astype(np.uint16) + b + 1) // 2).astype(np.uint8)


def _logit_mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """As toolchain.passes.mirror_model computes it."""
    p = np.clip(np.stack([a, b]).astype(np.float32), 0.5, 254.5) / 255
    z = np.log(p / (1 - p)).mean(0)
    s = 255 / (1 + np.exp(-z))
    return np.clip(np.floor((s - 0.5) * 255 / 254 + 0.5), 0, 255).astype(np.uint8)


def _box(full: np.ndarray, threshold: int, margin: float) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(full >= threshold)
    if len(ys) == 0:
        return None
    h, w = full.shape
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    my, mx = max(8, int(margin * (y1 - y0))), max(8, int(margin * (x1 - x0)))
    return max(0, y0 - my), min(h, y1 + my), max(0, x0 - mx), min(w, x1 + mx)


if __name__ == "__main__":
    main()
