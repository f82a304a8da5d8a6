"""The npm packages shipped inside the extension, pinned by version and integrity.

Only the files the offscreen document loads are copied: Pyodide's core
(no package wheels: the engine is pure Python), onnxruntime-web's plain WASM
build (threads + SIMD, loaded with the engine) and its WebGPU build
(`ort.webgpu.min.mjs` + the asyncify WASM, 26.8 MB, imported only when the
engine runs a model on WebGPU); not the JSEP, JSPI, WebGL or "all" variants.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from .fetch import DEFAULT_CACHE, extract_npm_files, fetch_npm_tarball


@dataclass(frozen=True)
class NpmPackage:
    name: str
    version: str
    integrity: str
    files: tuple[str, ...]  # paths inside the package
    dest: str  # folder inside the extension; files land flat in it

    def vendor(self, extension_dir: Path, cache: Path = DEFAULT_CACHE) -> list[Path]:
        tgz = fetch_npm_tarball(self.name, self.version, self.integrity, cache)
        staging = cache / "npm" / f"{self.name}-{self.version}"
        extracted = extract_npm_files(tgz, list(self.files), staging)
        target = extension_dir / self.dest
        target.mkdir(parents=True, exist_ok=True)
        return [Path(shutil.copy2(path, target / path.name)) for path in extracted]


PYODIDE = NpmPackage(
    "pyodide", "314.0.7",
    "sha512-0YvXxEhfEdpLfb/XkM2BFAeMROq0iMUX2bzzH9pOttyMcWkwq+HbE5uyuGD82LN7y2q+SNvi/6V5JEsOlD2R1A==",
    ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip",
     "pyodide-lock.json"),
    "vendor/pyodide",
)

ONNXRUNTIME_WEB = NpmPackage(
    "onnxruntime-web", "1.30.0",
    "sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ==",
    ("dist/ort.wasm.min.mjs", "dist/ort-wasm-simd-threaded.mjs",
     "dist/ort-wasm-simd-threaded.wasm",
     "dist/ort.webgpu.min.mjs", "dist/ort-wasm-simd-threaded.asyncify.mjs",
     "dist/ort-wasm-simd-threaded.asyncify.wasm"),
    "vendor/ort",
)

# OpenCV's WASM build (its WASM inlined), for Refine's strokes that re-segment
# (cv.grabCut). Its bindings create functions with `new Function`, which the
# extension pages' CSP forbids: it runs only in the sandboxed segmenter page.
OPENCV_JS = NpmPackage(
    "@techstark/opencv-js", "4.12.0-release.1",
    "sha512-LtTaph9v/HqLPXEg3m1xs2h7QJh10pUpuDT0nj8g77lelWnTwwQrehtd+fXElLOdrkqc4Fea6Z/sJBvEJLYPfw==",
    ("dist/opencv.js",),
    "vendor/opencv",
)

VENDORED = (PYODIDE, ONNXRUNTIME_WEB, OPENCV_JS)


def fetch_all(cache: Path = DEFAULT_CACHE) -> list[Path]:
    """Download and verify every vendored tarball (the `deps` task)."""
    return [fetch_npm_tarball(p.name, p.version, p.integrity, cache) for p in VENDORED]
