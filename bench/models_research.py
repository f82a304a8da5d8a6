"""Build the ISNet / MODNet research variants and compare <= 25 MB int4 recipes.

    python bench/models_research.py build      # build/models-research/*.onnx
    python bench/models_research.py candidates # dev-set agreement of int4 recipes

The dev set (DAVIS ids 002, 047, ..., 317: all = 2 mod 3) is disjoint from the scored
subset (`eval_models.py --every 3`: ids = 0 mod 3). Recipes were picked on dev;
calibration uses the scikit-image photos only.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "pysrc"))

from cutout.native import metrics  # noqa: E402
from cutout.toolchain import isnet, modnet  # noqa: E402
from cutout.toolchain import quantize as Q  # noqa: E402

OUT = Path(os.environ.get("CUTOUT_MODELS_DIR", ROOT / "build" / "models-research"))
CACHE = Path(os.environ.get("CUTOUT_CACHE_DIR", ROOT / "build" / "cache"))
EVAL_DIR = Path(os.environ.get("CUTOUT_EVAL_DIR", ROOT.parent / "shared" / "eval" / "davis345"))
THREADS = int(os.environ.get("CUTOUT_THREADS", "2"))


def dev_inputs() -> list[np.ndarray]:
    ids = [f"{i:03d}" for i in range(2, 345, 5)][::9]
    return [
        isnet.preprocess(np.asarray(Image.open(EVAL_DIR / "images" / f"{i}.jpg").convert("RGB")), (1024, 1024))
        for i in ids
    ]


def agreement(model: onnx.ModelProto | Path, xs: list[np.ndarray], refs: list[np.ndarray]) -> dict:
    sess = Q._session(model if isinstance(model, onnx.ModelProto) else str(model), THREADS)
    ys = [sess.run(None, {"input": x})[0][0, 0] for x in xs]
    ious = [metrics.iou(y, r >= 0.5) for y, r in zip(ys, refs)]
    return {"iou_mean": float(np.mean(ious)), "iou_min": float(np.min(ious)),
            "mae": float(np.mean([metrics.mae(y, r) for y, r in zip(ys, refs)]))}


def candidates() -> dict:
    original = isnet.fetch_model(CACHE)
    fp32 = isnet.fp32_dynamic(original)
    t = time.time()
    cal = isnet.calibration_inputs(1024, CACHE)
    stats = Q.activation_stats(fp32, cal, THREADS)
    hess = Q.conv_hessians(fp32, cal, threads=THREADS)
    print(f"calibration {time.time() - t:.0f}s", flush=True)
    xs = dev_inputs()
    ref = Q._session(str(original), THREADS)
    refs = [ref.run(["output"], {"input": x})[0][0, 0] for x in xs]
    mixed = isnet.int4_plan(fp32)
    recipes = {
        "int8": (Q.uniform_plan(fp32, "int8"), None, None),
        "int4-b32 gptq+bc": (Q.uniform_plan(fp32, "int4-b32"), stats, hess),
        "mixed rtn+imp+bc": (mixed, stats, None),
        "mixed gptq+bc": (mixed, stats, hess),
    }
    res = {}
    for name, (plan, st, h) in recipes.items():
        t = time.time()
        m = Q.quantize_model(fp32, plan, st, bias_correction=st is not None, hessians=h)
        size = len(m.SerializeToString())
        row = {"bytes": size, **agreement(m, xs, refs), "build_s": round(time.time() - t, 1)}
        res[name] = row
        print(name, json.dumps(row), flush=True)
        if name == "mixed gptq+bc":
            Q.save(m, OUT / "isnet-int4mix.onnx")
    return res


def build() -> dict:
    out = isnet.build_variants(OUT, CACHE, small=not (OUT / "isnet-int4mix.onnx").exists(), threads=THREADS)
    out.update(modnet.build_variants(OUT, CACHE))
    return {k: [str(v), v.stat().st_size] for k, v in out.items()}


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "build"
    result = {"candidates": candidates, "build": build}[what]()
    print(json.dumps(result, indent=1))
