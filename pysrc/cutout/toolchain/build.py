"""Assemble the unpacked extension in build/extension.

Layers, in order: static files and Jinja2 templates from extension/ (a
`*.j2` file is rendered and loses the suffix), the vendored npm runtime
files, the `cutout` wheel, the browser models with their manifest, icons.
The output folder is rebuilt from scratch each time: nothing in it is edited
by hand or committed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import jinja2

from .. import modes, protocol
from .fetch import DEFAULT_CACHE, REPO_ROOT
from .compose import strip_graphs
from .fuse import RESIZE_FILE, resize_model
from .passes import graph_bytes as pass_graphs
from .preimports import engine_stdlib_imports, snapshot_key
from .vendor import PYODIDE, VENDORED

TEMPLATE_DIR = REPO_ROOT / "extension"
OUT_DIR = REPO_ROOT / "build" / "extension"
MODELS_DIR = REPO_ROOT / "build" / "models"
MANIFEST = REPO_ROOT / "models" / "manifest.json"
ICON_SIZES = (16, 32, 48, 128)
# Pyodide's start-up memory snapshot, made by `invoke build` in headless Chromium
# (toolchain.snapshot): the engine restores it even on its very first start.
SNAPSHOT_PATH = "engine/pyodide.snapshot.gz"
# The standard-library modules the engine imports, held by that snapshot, and its key.
ENGINE_STDLIB = engine_stdlib_imports()
SNAPSHOT_KEY = snapshot_key(PYODIDE.version, ENGINE_STDLIB)


@dataclass(frozen=True)
class BuildInfo:
    out: Path
    wheel: Path
    files: int
    bytes: int


def project_version() -> str:
    with open(REPO_ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["version"]


# Where the extension downloads models that are not bundled. The default is
# `invoke serve-models` on this machine; a release build passes its own host.
DEFAULT_MODEL_HOST = "http://127.0.0.1:8765/"


def template_context(wheel_name: str, model_host: str = DEFAULT_MODEL_HOST) -> dict[str, object]:
    return {
        "name": "Cutout",
        "version": project_version(),
        "minimum_chrome_version": "116",  # chrome.runtime.getContexts
        "offscreen_path": "offscreen/offscreen.html",
        "result_path": "pages/result/result.html",
        "batch_path": "pages/batch/batch.html",
        "default_mode": modes.DEFAULT_MODE,
        "modes": modes.mode_labels(),
        "wheel_path": f"engine/{wheel_name}",
        "model_host": model_host,
        "model_cache": modes.MODEL_CACHE,
        "warm_model_key": modes.WARM_MODEL_KEY,
        "icons": {str(s): f"icons/icon{s}.png" for s in ICON_SIZES},
        "graph_session_options": modes.session_options("wasm"),
        "preloaded_graphs": list(modes.PRELOADED_GRAPHS),
        "idle_minutes": round(modes.IDLE_SESSION_MS / 60_000),
        "unused_engine_ms": modes.UNUSED_ENGINE_MS,
        "engine_cache": modes.ENGINE_CACHE,
        "pyodide_version": PYODIDE.version,
        "snapshot_imports": list(ENGINE_STDLIB),
        "snapshot_key": SNAPSHOT_KEY,
        "bundled_snapshot": SNAPSHOT_PATH,
        **protocol.js_constants(),
    }


def render_tree(src: Path, dst: Path, context: dict[str, object]) -> int:
    """Copy src to dst, rendering `*.j2` templates; returns the number of files."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(src), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False)
    count = 0
    for path in sorted(src.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(src)
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".j2":
            text = env.get_template(rel.as_posix()).render(**context)
            target = target.with_suffix("")
            if target.suffix == ".json":  # stable key order, validated JSON
                text = json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
            target.write_text(text)
        else:
            shutil.copy2(path, target)
        count += 1
    return count


def pack_wheel(dest: Path) -> Path:
    """Build the pure-Python `cutout` wheel that Pyodide unpacks.

    `pip wheel` rather than `pyodide build`: pyodide-build 0.25.1 (the newest for
    Python 3.11) fails at import with current `wheel`, and with wheel 0.43 it
    downloads a cross-build environment from GitHub, unreachable here; a
    pure-Python wheel needs no cross-compilation (docs/ARCHITECTURE.md).
    """
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("cutout-*.whl"):
        old.unlink()
    # setuptools reuses build/lib: a module deleted from pysrc/ would live on there.
    for stale in (REPO_ROOT / "build" / "lib", *(REPO_ROOT / "build").glob("bdist.*")):
        shutil.rmtree(stale, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(dest), str(REPO_ROOT)], check=True)
    (wheel,) = dest.glob("cutout-*.whl")
    return wheel


def draw_icons(dest: Path) -> None:
    """Toolbar icons: a figure cut out of a checkerboard, drawn at each size."""
    from PIL import Image, ImageDraw

    dest.mkdir(parents=True, exist_ok=True)
    for size in ICON_SIZES:
        scale = 8
        big = size * scale
        img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
        draw = ImageDraw.Draw(img)
        cell = big // 4
        for y in range(4):
            for x in range(4):
                shade = (205, 205, 205, 255) if (x + y) % 2 else (250, 250, 250, 255)
                draw.rectangle([x * cell, y * cell, (x + 1) * cell, (y + 1) * cell], fill=shade)
        blue = (10, 102, 194, 255)
        draw.ellipse([big * 0.34, big * 0.12, big * 0.66, big * 0.44], fill=blue)
        draw.rounded_rectangle([big * 0.2, big * 0.48, big * 0.8, big * 0.98], radius=big // 6,
                               fill=blue)
        img.resize((size, size), Image.Resampling.LANCZOS).save(dest / f"icon{size}.png")


def copy_models(extension_dir: Path, models_dir: Path = MODELS_DIR, manifest: Path = MANIFEST,
                bundle: set[str] | None = None, remote: bool = False) -> list[str]:
    """Bundle every model (the default: every mode works offline right after Load
    unpacked), or with `remote` only those the manifest marks as bundled (the fast
    tier; the slim flavour downloads the rest from the model host), or the ids in
    `bundle`. The pixel graphs (resize, compose, the extra passes') are always bundled."""
    data = json.loads(manifest.read_text())
    for model in data["models"]:
        if bundle is not None:
            model["bundled"] = model["id"] in bundle
        elif not remote:
            model["bundled"] = True
    target = extension_dir / "models"
    target.mkdir(parents=True, exist_ok=True)
    (target / RESIZE_FILE).write_bytes(resize_model().SerializeToString(deterministic=True))
    for name, graph in strip_graphs().items():
        (target / name).write_bytes(graph)
    for name, graph in pass_graphs().items():
        (target / name).write_bytes(graph)
    bundled = [m for m in data["models"] if m.get("bundled", True)]
    for model in bundled:
        source = models_dir / model["file"]
        if not source.is_file():
            raise FileNotFoundError(f"{source} is missing: run `invoke models` first")
        shutil.copy2(source, target / model["file"])
    # The engine sees every model: bundled ones load from the extension, the
    # others are downloaded from the model host and verified against this.
    (target / "manifest.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return [m["id"] for m in bundled]


def build_extension(out: Path = OUT_DIR, cache: Path = DEFAULT_CACHE,
                    model_host: str = DEFAULT_MODEL_HOST,
                    bundle: set[str] | None = None, remote: bool = False) -> BuildInfo:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    wheel = pack_wheel(out / "engine")
    render_tree(TEMPLATE_DIR, out, template_context(wheel.name, model_host))
    for package in VENDORED:
        package.vendor(out, cache)
    copy_models(out, bundle=bundle, remote=remote)
    draw_icons(out / "icons")
    files = [p for p in out.rglob("*") if p.is_file()]
    return BuildInfo(out, wheel, len(files), sum(p.stat().st_size for p in files))
