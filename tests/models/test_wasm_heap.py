"""The engine's onnxruntime-web session options keep the WASM heap flat from one run to the
next (modes.session_options): run in Node with the vendored onnxruntime-web, the way the
inference worker creates its sessions. A WASM heap never shrinks, so a second run that
plans memory beside the first one's keeps that memory until the worker ends."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from cutout.modes import session_options

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node")

# The feed of a davis345 photo (854x480): the fused model resizes it to its own input.
FEED_W, FEED_H = 854, 480
RUNS = 3

SCRIPT = """
const Memory = WebAssembly.Memory; const memories = [];
WebAssembly.Memory = function (d) { const m = new Memory(d); memories.push(m); return m; };
WebAssembly.Memory.prototype = Memory.prototype;
const ort = await import(%(ort)s);
const fs = await import('node:fs');
ort.env.wasm.numThreads = 2;
ort.env.wasm.wasmPaths = %(dir)s;
const heapMb = () => Math.max(...memories.map((m) => m.buffer.byteLength)) / 1048576;
const session = await ort.InferenceSession.create(fs.readFileSync(%(model)s), %(options)s);
const [w, h] = [%(w)d, %(h)d];
const rgba = new Uint8Array(w * h * 4).map((_, i) => (i %% 4 === 3 ? 255 : (i * 7919) %% 251));
const heaps = [];
for (let i = 0; i < %(runs)d; i++) {
  await session.run({ rgba: new ort.Tensor('uint8', rgba, [1, h, w, 4]) });
  heaps.push(heapMb());
}
console.log(JSON.stringify(heaps));
process.exit(0);
"""


@pytest.fixture(scope="module")
def ort_web(tmp_path_factory) -> Path:
    from cutout.toolchain.vendor import ONNXRUNTIME_WEB

    files = ONNXRUNTIME_WEB.vendor(tmp_path_factory.mktemp("ort"))
    return next(f for f in files if f.name == "ort.wasm.min.mjs")


def heaps_mb(ort_mjs: Path, model: Path, options: dict[str, object]) -> list[float]:
    """The WASM heap (MB) after each run. The script is a file: onnxruntime's thread
    workers inherit node's flags, and `--input-type` is refused in a worker."""
    script = SCRIPT % {"ort": json.dumps(ort_mjs.as_uri()),
                       "dir": json.dumps(str(ort_mjs.parent) + "/"),
                       "model": json.dumps(str(model)), "options": json.dumps(options),
                       "w": FEED_W, "h": FEED_H, "runs": RUNS}
    path = ort_mjs.parent / "heaps.mjs"
    path.write_text(script)
    done = subprocess.run(["node", str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_later_runs_take_no_more_wasm_memory_than_the_first(built_models, ort_web):
    from cutout.toolchain.models import DEFAULT_OUT

    entry = built_models["u2netp-wasm"]
    model = DEFAULT_OUT / entry.file
    options = session_options("wasm", entry.int8_compute, entry.optimized)
    assert options["enableMemPattern"] is False

    heaps = heaps_mb(ort_web, model, options)
    assert heaps[-1] == heaps[0], f"the heap grew after the first run: {heaps} MB"

    # The same session with onnxruntime's memory pattern on: the second run plans a
    # block of its own (measured 252 -> 363 MB), which is what the options prevent.
    patterned = heaps_mb(ort_web, model, {**options, "enableMemPattern": True})
    assert patterned[-1] > patterned[0] + 32, patterned
    assert heaps[-1] < patterned[-1]
