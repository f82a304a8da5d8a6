"""Bundle Pyodide's start-up snapshot into the built extension.

The engine restores Pyodide from a memory snapshot (~0.6 s) instead of starting it
(2-4 s; docs/BENCHMARKS.md). A snapshot must be made by the same Pyodide build in a
browser (it records which of the page's globals Pyodide holds), so the build makes it
the way a user's first start would: the built extension in headless Chromium boots its
engine once, which keeps the snapshot in Cache Storage; that entry is copied into the
extension. Without it (no Chromium here) the extension still works: its first start
makes its own, ~3 s slower.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

from .. import modes
from .build import SNAPSHOT_KEY, SNAPSHOT_PATH


def bundle_snapshot(extension_dir: Path, timeout: float = 120) -> Path:
    """Boot the engine of `extension_dir` once in headless Chromium and write the
    snapshot it keeps (gzipped) to SNAPSHOT_PATH inside it."""
    from ..headless.chromium import ExtensionBrowser

    out = Path(extension_dir) / SNAPSHOT_PATH
    out.unlink(missing_ok=True)  # the engine must make one, not restore this
    with ExtensionBrowser(Path(extension_dir)) as browser:
        reply = browser.send({"target": "worker", "type": "device-info", "data": {}})
        if not isinstance(reply, dict) or reply.get("error"):
            raise RuntimeError(f"the engine did not start: {reply}")
        deadline = time.monotonic() + timeout
        while not (packed := _stored_snapshot(browser)):  # saved in the background
            if time.monotonic() > deadline:
                raise RuntimeError("the engine kept no snapshot")
            time.sleep(0.5)
    out.write_bytes(packed)
    return out


def _stored_snapshot(browser) -> bytes:
    encoded = browser.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "(async () => {"
        f"  const hit = await (await caches.open({modes.ENGINE_CACHE!r})).match({SNAPSHOT_KEY!r});"
        "  if (!hit) return '';"
        "  const bytes = new Uint8Array(await hit.arrayBuffer());"
        "  let text = '';"
        "  for (let i = 0; i < bytes.length; i += 0x8000)"
        "    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));"
        "  return btoa(text);"
        "})().then(done, (e) => done(''));")
    return base64.b64decode(encoded) if encoded else b""
