"""Before/after close-up of the compose graph (toolchain/compose.py) on a hair edge.

    python bench/compose_figure.py [--photo PHOTO --mask MASK.png] [--out docs/img/compose-hair.png]

Left: the naive export (the photo's colours under the mask stretched bilinearly, as
the canvas compose does today); right: the compose graph's cut-out. Both over a
plain contrasting colour, so a blurred edge and a halo of the old background show.
Without --photo/--mask it builds the synthetic hair composite of
tests/unit/test_compose.py (4000x3000, 1024 px mask). The crop is the window with
the most soft-alpha pixels unless --crop x,y,size is given.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "pysrc"))
sys.path.insert(0, str(ROOT / "tests" / "unit"))  # the synthetic composites live with their tests

from cutout.toolchain.compose import compose_bytes  # noqa: E402
from test_compose import bilinear_model, run_compose, session, synthetic  # noqa: E402

DEFAULT_OUT = ROOT / "docs" / "img" / "compose-hair.png"
BACKDROP = (200, 40, 60)  # crimson: unlike both the blond hair and the blue background
ZOOM = 2


def over(rgba: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """Straight RGBA composited over a plain colour, uint8 RGB."""
    a = rgba[..., 3:4].astype(np.float32) / 255
    out = rgba[..., :3] * a + np.array(colour, np.float32) * (1 - a)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def softest_window(alpha: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left (x, y) of the size x size window with the most 0 < alpha < 255 pixels."""
    soft = ((alpha > 0) & (alpha < 255)).astype(np.float32)
    step = max(1, size // 4)
    h, w = soft.shape
    best, at = -1.0, (0, 0)
    for y in range(0, max(1, h - size + 1), step):
        for x in range(0, max(1, w - size + 1), step):
            n = float(soft[y:y + size, x:x + size].sum())
            if n > best:
                best, at = n, (x, y)
    return at


def panel(rgb: np.ndarray, label: str) -> Image.Image:
    im = Image.fromarray(rgb).resize((rgb.shape[1] * ZOOM, rgb.shape[0] * ZOOM), Image.NEAREST)
    canvas = Image.new("RGB", (im.width, im.height + 24), (255, 255, 255))
    canvas.paste(im, (0, 24))
    ImageDraw.Draw(canvas).text((6, 6), label, fill=(0, 0, 0))
    return canvas


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photo", type=Path, help="the full-resolution photo")
    ap.add_argument("--mask", type=Path, help="the model's mask (greyscale PNG, any size)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--crop", help="x,y,size in photo pixels (default: the softest window)")
    ap.add_argument("--size", type=int, default=280, help="crop side, photo pixels")
    args = ap.parse_args(argv)
    if (args.photo is None) != (args.mask is None):
        ap.error("--photo and --mask go together")

    if args.photo:
        rgba = np.asarray(ImageOps.exif_transpose(Image.open(args.photo)).convert("RGBA"))
        mask = np.asarray(Image.open(args.mask).convert("L"))
    else:
        rgba, _, _, mask = synthetic("hair")
    out = run_compose(session(compose_bytes()), rgba, mask)
    stretched = session(bilinear_model()).run(None, {"rgba": rgba[None], "alpha": mask[None]})[0]
    naive = rgba.copy()
    naive[..., 3] = stretched[0, 0]

    if args.crop:
        x, y, size = (int(v) for v in args.crop.split(","))
    else:
        size = args.size
        x, y = softest_window(out[..., 3], size)
    window = np.s_[y:y + size, x:x + size]
    left = panel(over(naive[window], BACKDROP), "naive: photo colours, mask stretched")
    right = panel(over(out[window], BACKDROP), "compose: guided alpha, decontaminated")
    fig = Image.new("RGB", (left.width + right.width + 8, left.height), (255, 255, 255))
    fig.paste(left, (0, 0))
    fig.paste(right, (left.width + 8, 0))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.save(args.out, optimize=True)
    print(f"{args.out}: crop x={x} y={y} size={size}, {args.out.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
