"""`cutout`: remove image backgrounds from the command line, through the real
extension engine (headless Chromium, onnxruntime-web, Pyodide) that `invoke build`
wrote to build/extension.

    cutout remove photo.jpg holiday/ -o cutouts --mode balanced
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .modes import AUTO_MODE, MODES
from .tiers import PREFERENCES

# What a folder given on the command line contributes: the images in it (not below).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".avif")


def image_paths(args: Sequence[str]) -> list[Path]:
    """The files named, in order; a folder stands for the images directly inside it
    (sorted). A path that does not exist is kept, so that it is reported as missing."""
    paths: list[Path] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            paths += sorted(p for p in path.iterdir()
                            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            paths.append(path)
    return paths


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="cutout",
        description="Remove image backgrounds on this computer. Each image goes through "
        "Cutout's browser extension (run headless in Chromium): nothing is uploaded.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    remove = commands.add_parser(
        "remove", help="cut out the subject of each image into a transparent PNG",
        description="Cut out the subject of each image into <name>.png (RGBA, the image's "
        "own size) in the output folder, plus timings.json. Exits with 1 when any file "
        "failed, naming each.")
    remove.add_argument("paths", nargs="+", metavar="PATH",
                        help="image files, or folders (their images, not their subfolders)")
    remove.add_argument("-o", "--out", default="cutouts", type=Path,
                        help="output folder (default: %(default)s)")
    remove.add_argument("--mode", default=AUTO_MODE, choices=[AUTO_MODE, *MODES],
                        help="auto (default: the best for this device), fast, balanced "
                        "(better edges, slower on the CPU), quality (balanced with a second, "
                        "mirrored pass: twice its time) or portrait (people, hair)")
    remove.add_argument("--backend", default="auto", choices=PREFERENCES,
                        help="where the model runs: auto (default), webgpu or wasm (CPU)")
    remove.add_argument("--extension", type=Path, default=None,
                        help="the built extension (default: build/extension of this checkout)")
    return top


def _progress(done: int, total: int, name: str, status: str) -> str:
    width = 24
    filled = round(width * done / total) if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {name}: {status}"


def remove(paths: list[Path], out: Path, mode: str = AUTO_MODE, backend: str = "auto",
           extension: Path | None = None) -> int:
    """Cut out `paths` into `out`; prints a line per file and a summary; returns the
    exit status (0: all done, 1: some failed, 2: nothing to do or no extension)."""
    from .headless.runner import FileReport, remove_files
    from .toolchain.build import OUT_DIR

    extension = extension or OUT_DIR
    if not (extension / "manifest.json").is_file():
        print(f"cutout: no built extension in {extension}: run `invoke build` first",
              file=sys.stderr)
        return 2
    if not paths:
        print("cutout: no images found in the paths given", file=sys.stderr)
        return 2
    done: list[FileReport] = []

    def report(r: FileReport) -> None:
        done.append(r)
        t = r.timings_ms or {}
        status = (f"done in {t.get('total', 0) / 1000:.2f} s, {r.model} on {r.backend}"
                  + (f" ({r.fallback})" if r.fallback else "") + f" -> {r.output}"
                  if r.ok else f"FAILED: {r.error}")
        print(_progress(len(done), len(paths), Path(r.path).name, status), flush=True)

    print(f"cutout: {len(paths)} image(s), mode {mode}, backend {backend}; starting the "
          "engine…", flush=True)
    reports = remove_files(paths, out, extension, mode, backend=backend, on_report=report)
    failed = [r for r in reports if not r.ok]
    print(f"cutout: {len(reports) - len(failed)} of {len(reports)} done, written to {out}/"
          + (f"; {len(failed)} failed:" if failed else ""))
    for r in failed:
        print(f"  {r.path}: {r.error}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "remove":
        return remove(image_paths(args.paths), args.out, args.mode, args.backend, args.extension)
    return 2  # argparse enforces a command


if __name__ == "__main__":
    sys.exit(main())
