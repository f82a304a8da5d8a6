"""`invoke eval`: score the shipped models, through the product's own native
pipeline (the same fused files and size rules as the browser), on davis345.

Per mode: IoU at 0.5 (mean, worst 5 %), alpha MAE, boundary F (2 px), file size,
native CPU time per image. The research variants (fp16 original, int4, the
npm package's own quint8, rembg's U²-Netp pipeline) are scored by
bench/eval_models.py; `plot` draws both result sets: quality against size and time.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from .modes import MODES, get_mode, pipeline_options
from .native import metrics
from .native.pipeline import get_session, load_rgba, predict_alpha
from .toolchain.fetch import REPO_ROOT

# The evaluation photos live beside the repository, never in it.
DAVIS = REPO_ROOT.parent / "shared" / "eval" / "davis345"
RESULTS = REPO_ROOT / "bench" / "results"


def image_ids(every: int) -> list[str]:
    return [p.stem for p in sorted((DAVIS / "images").glob("*.jpg"))][::every]


def score_mode(mode_name: str, models_dir: Path, ids: list[str],
               backend: str = "wasm") -> dict[str, object]:
    """IoU, MAE, boundary F and native time of the file `mode` runs on `backend`."""
    mode = get_mode(mode_name)
    model_id = mode.model_on(backend)
    path = models_dir / f"{model_id}.onnx"
    session = get_session(path)
    options = pipeline_options(mode)
    predict_alpha(session, np.zeros((64, 64, 4), np.uint8), **options)  # warm-up
    ious, maes, bfs, seconds = [], [], [], []
    for i in ids:
        rgba = load_rgba(DAVIS / "images" / f"{i}.jpg")
        gt = np.asarray(Image.open(DAVIS / "masks" / f"{i}.png").convert("L"))
        start = time.perf_counter()
        alpha = predict_alpha(session, rgba, **options)
        seconds.append(time.perf_counter() - start)
        ious.append(metrics.iou(alpha, gt))
        maes.append(metrics.mae(alpha, gt))
        bfs.append(metrics.boundary_f(alpha, gt))
    return {
        "mode": mode_name, "model": model_id, "bytes": path.stat().st_size,
        "model_side": mode.model_side, "keep_aspect": mode.keep_aspect, "images": len(ids),
        "iou_mean": round(float(np.mean(ious)), 4),
        "iou_worst5": round(float(metrics.worst_mean(ious, 0.05)), 4),
        "mae": round(float(np.mean(maes)), 4), "boundary_f": round(float(np.mean(bfs)), 4),
        "seconds": round(float(np.median(seconds)), 3),
    }


def run(models_dir: Path, every: int = 3) -> dict[str, object] | None:
    """Scores every mode; None (and nothing written) when davis345 is absent."""
    if not (DAVIS / "images").is_dir():
        return None
    ids = image_ids(every)
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "dataset": "davis345", "subset": f"every {every}th image ({len(ids)})",
        "pipeline": "cutout.native.pipeline (fused models, onnxruntime CPU, 2 cores)",
        # Each mode's WASM file, and its WebGPU file where that is another one.
        "rows": [score_mode(name, models_dir, ids, backend)
                 for name, mode in MODES.items() for backend in ("wasm", "webgpu")
                 if backend == "wasm" or mode.model_on("webgpu") != mode.model_on("wasm")],
    }


def write(report: dict[str, object], out_dir: Path = RESULTS) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{str(report['date'])[:10]}-eval-shipped.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def table(report: dict[str, object]) -> str:
    lines = ["| mode | model | MB | IoU mean | IoU worst 5 % | MAE | boundary F | s / image (native) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:  # type: ignore[union-attr]
        lines.append(f"| {r['mode']} | {r['model']} | {r['bytes'] / 1e6:.1f} | {r['iou_mean']:.3f} | "
                     f"{r['iou_worst5']:.3f} | {r['mae']:.4f} | {r['boundary_f']:.3f} | {r['seconds']:.2f} |")
    return "\n".join(lines)


def plot(shipped: dict[str, object] | None, research: Path | None, out: Path) -> Path:
    """Quality (IoU) against file size and against time, one point per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points: list[tuple[str, float, float, float, str]] = []  # name, MB, s, IoU, group
    if research and research.is_file():
        for r in json.loads(research.read_text())["rows"]:
            if "@" not in r["variant"]:  # size sweeps are a separate question
                points.append((r["variant"], r["bytes"] / 1e6, r["cpu_s_median"],
                               r["iou_mean"], "research (16-core host)"))
    for r in (shipped or {}).get("rows", []):  # type: ignore[union-attr]
        points.append((f"{r['mode']}: {r['model']}", r["bytes"] / 1e6, r["seconds"], r["iou_mean"],
                       "shipped (this machine)"))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, index, label in ((axes[0], 1, "file size (MB)"), (axes[1], 2, "native CPU s / image")):
        for group, marker in (("research (16-core host)", "o"), ("shipped (this machine)", "s")):
            chosen = [p for p in points if p[4] == group]
            ax.scatter([p[index] for p in chosen], [p[3] for p in chosen], marker=marker, label=group)
            for p in chosen:
                ax.annotate(p[0], (p[index], p[3]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(label)
        ax.set_ylabel("IoU vs ground truth (davis345)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Quality against size and time (times comparable only within a group)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
