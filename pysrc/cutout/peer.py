"""The peer of `invoke bench --peer`: @imgly/background-removal 1.7.0, run in the same
headless Chromium on the same photos in the same run as Cutout. Benchmark-only: fetched
from npm (pinned) when the benchmark runs, never shipped or committed.

How it runs (../shared/DESIGN.md, "Peers"): its default config (`model: "medium"` =
ISNet fp16 at 1024², `device: "cpu"` = onnxruntime-web WASM with one thread per core)
on a page served from 127.0.0.1 with COOP/COEP, so that it gets its WASM threads.
1.7.0 wants onnxruntime-web exactly 1.21.0 (mapped with an import map) and reads
`<publicPath>/resources.json` for `/models/isnet_fp16`; its model data is not on npm
for 1.7.0, so that file is written here in 1.7.0's format over the chunks of
@imgly/background-removal-data 1.4.5's `/models/medium` (same network and precision).
"""

from __future__ import annotations

import base64
import json
import shutil
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .headless.servers import StaticServer, _QuietHandler
from .toolchain.fetch import DEFAULT_CACHE, REPO_ROOT, extract_npm_files, fetch_npm_tarball

PEER = ("@imgly/background-removal", "1.7.0",
        "sha512-/1ZryrMYg2ckIvJKoTu5Np50JfYMVffDMlVmppw/BdbN3pBTN7e6stI5/7E/LVh9DDzz6J588s7sWqul3fy5wA==")
PEER_ORT = ("onnxruntime-web", "1.21.0",
            "sha512-adzOe+7uI7lKz6pQNbAsLMQd2Fq5Jhmoxd8LZjJr8m3KvbFyiYyRxRiC57/XXD+jb18voppjeGAjoZmskXG+7A==")
PEER_DATA = ("@imgly/background-removal-data", "1.4.5",
             "sha512-iRXZpPd7YirbJ4eOZ3SlvbdJkAc/LxVjzWLMHOezmRrVThPJPdPc+Y2kHEAVFEVvpDIuvBDyOfTTFBSJT2QR5w==")
SITE = REPO_ROOT / "build" / "peer"
ORT_FILES = ("dist/ort.bundle.min.mjs", "dist/ort-wasm-simd-threaded.mjs",
             "dist/ort-wasm-simd-threaded.wasm")

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>peer: @imgly/background-removal 1.7.0</title>
<script type="importmap">
{"imports": {"onnxruntime-web": "./ort/ort.bundle.min.mjs",
             "onnxruntime-web/webgpu": "./ort/ort.bundle.min.mjs"}}
</script>
<script type="module" src="peer.js"></script>
"""

SCRIPT = """import { removeBackground } from './imgly/index.mjs';
const publicPath = new URL('./data/', location.href).href;
// One photo, as its users call it: URL in, PNG blob out. Returns the time and the PNG.
window.peerRemove = async (url) => {
  const t0 = performance.now();
  const png = await removeBackground(url, { publicPath });
  const ms = performance.now() - t0;
  const data = await new Promise((resolve) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.readAsDataURL(png);
  });
  return { ms, png: data, isolated: crossOriginIsolated, threads: navigator.hardwareConcurrency };
};
window.peerReady = true;
"""


class IsolatedHandler(_QuietHandler):
    """COOP/COEP, so that the peer's page is cross-origin isolated and gets threads."""

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()


def stage(site: Path = SITE, cache: Path = DEFAULT_CACHE) -> Path:
    """Write the peer's page, its code, onnxruntime-web 1.21.0 and the model chunks."""
    if (site / "peer.js").is_file():
        return site
    tmp = site.with_name(site.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    extract_npm_files(fetch_npm_tarball(*PEER, cache), ["dist/index.mjs"], tmp / "imgly-pkg")
    (tmp / "imgly").mkdir(parents=True)
    shutil.move(tmp / "imgly-pkg" / "dist" / "index.mjs", tmp / "imgly" / "index.mjs")
    extract_npm_files(fetch_npm_tarball(*PEER_ORT, cache), list(ORT_FILES), tmp / "ort-pkg")
    shutil.move(tmp / "ort-pkg" / "dist", tmp / "ort")
    data_tgz = fetch_npm_tarball(*PEER_DATA, cache)
    with tarfile.open(data_tgz, "r:gz") as tf:
        index = json.load(tf.extractfile("package/dist/resources.json"))  # type: ignore[arg-type]
    medium = index["/models/medium"]
    extract_npm_files(data_tgz, [f"dist/{c['hash']}" for c in medium["chunks"]], tmp / "data-pkg")
    shutil.move(tmp / "data-pkg" / "dist", tmp / "data")

    def whole(path: Path, mime: str, name: str) -> dict[str, object]:
        size = path.stat().st_size
        return {"chunks": [{"name": name, "offsets": [0, size]}], "size": size, "mime": mime}

    resources = {
        "/models/isnet_fp16": {"chunks": [{"name": c["hash"], "offsets": c["offsets"]}
                                          for c in medium["chunks"]],
                               "size": medium["size"], "mime": medium["mime"]},
        "/onnxruntime-web/ort-wasm-simd-threaded.wasm": whole(
            tmp / "ort" / "ort-wasm-simd-threaded.wasm", "application/wasm",
            "../ort/ort-wasm-simd-threaded.wasm"),
        "/onnxruntime-web/ort-wasm-simd-threaded.mjs": whole(
            tmp / "ort" / "ort-wasm-simd-threaded.mjs", "text/javascript",
            "../ort/ort-wasm-simd-threaded.mjs"),
    }
    (tmp / "data" / "resources.json").write_text(json.dumps(resources))
    (tmp / "index.html").write_text(PAGE)
    (tmp / "peer.js").write_text(SCRIPT)
    for leftover in ("imgly-pkg", "ort-pkg", "data-pkg"):
        shutil.rmtree(tmp / leftover, ignore_errors=True)
    shutil.rmtree(site, ignore_errors=True)
    tmp.replace(site)
    return site


@dataclass
class PeerRun:
    image: str
    seconds: float  # removeBackground() of one photo, as the page measured it
    png: bytes
    isolated: bool  # the page was cross-origin isolated (threads available)


def run(browser_driver, images: list[Path], site: Path,
        after_reload: Path | None = None,
        relaunch: Callable[[], Any] | None = None) -> list[PeerRun]:
    """Each photo through the peer in `browser_driver` (a plain Chromium tab); the first
    run includes its model download (from 127.0.0.1) and session creation. With
    `after_reload`, the page is then reloaded (a new start, the model in the HTTP
    cache) and that photo run once more; with `relaunch` too (it restarts Chromium on
    the same profile and returns the new driver), once more after that: the last runs."""
    images_dir = site / "images"
    shutil.rmtree(images_dir, ignore_errors=True)
    images_dir.mkdir()
    for path in images:
        shutil.copy(path, images_dir / path.name)
    runs: list[PeerRun] = []

    def wait_ready(driver: Any) -> None:
        deadline = time.monotonic() + 60
        while not driver.execute_script("return window.peerReady === true"):
            if time.monotonic() > deadline:
                raise RuntimeError("the peer's page did not load")
            time.sleep(0.2)

    def remove(driver: Any, path: Path) -> None:
        reply = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "window.peerRemove(arguments[0]).then(done, (e) => done({error: String(e)}));",
            server.url(f"images/{path.name}"))
        if "error" in reply:
            raise RuntimeError(f"peer failed on {path.name}: {reply['error']}")
        png = base64.b64decode(reply["png"].split(",", 1)[1])
        runs.append(PeerRun(path.name, reply["ms"] / 1000, png, bool(reply["isolated"])))

    with StaticServer(site, IsolatedHandler) as server:  # one port: the HTTP cache's keys
        browser_driver.get(server.url("index.html"))
        wait_ready(browser_driver)
        for path in images:
            remove(browser_driver, path)
        if after_reload is not None:
            browser_driver.refresh()
            wait_ready(browser_driver)
            remove(browser_driver, after_reload)
            if relaunch is not None:
                driver = relaunch()
                driver.get(server.url("index.html"))
                wait_ready(driver)
                remove(driver, after_reload)
    return runs
