"""Capability tiers in the real extension: the probe and tier on the options page with and
without a WebGPU adapter, every model on WebGPU and WASM agreeing with native onnxruntime, every node of every
model on the WebGPU EP except int64 shape arithmetic, a WebGPU failure falling back.

Headless Chromium here has WebGPU only with --enable-unsafe-webgpu: SwiftShader, a
software adapter (correct, but ~20 s for ISNet at 128 px and ~3 min for U²-Netp at its
fixed 320 px): inputs are kept small, and nothing here is timed.
"""

from __future__ import annotations

import json
import re
import time

import numpy as np
import onnx
import pytest

from cutout.headless.chromium import WEBGPU_ARGS, ExtensionBrowser
from test_remove_background import agreement  # tests/browser is on sys.path

SMALL_SIDE = 128  # dynamic models' input on SwiftShader
SHAPE_TYPES = {onnx.TensorProto.INT64, onnx.TensorProto.INT32}
# Shape arithmetic on small int64 tensors, which the WebGPU EP leaves on the CPU on
# purpose (its results size the GPU work); onnxruntime also creates such nodes while
# optimising (e.g. "Gather_token_558"), which are not in the file.
SHAPE_OPS = {"Shape", "Gather", "Slice", "Concat", "Unsqueeze", "Squeeze", "Cast", "Reshape"}


@pytest.fixture(scope="module")
def gpu_browser(extension_dir):
    """A profile with SwiftShader's WebGPU and no model host: the default build must
    run every mode from what it bundles."""
    # SwiftShader runs one U2-Netp dispatch for seconds on a loaded 2-core machine: the
    # GPU watchdog may then kill the GPU process (CI saw a lost device mid-run as
    # "BufferManager::Download" failing). A real GPU never takes that long.
    with ExtensionBrowser(extension_dir, (*WEBGPU_ARGS, "--disable-gpu-watchdog")) as b:
        b.set_settings(webgpuTimeoutMs=900_000)  # SwiftShader is slow, not hung
        yield b


def open_options(browser: ExtensionBrowser) -> dict[str, str]:
    """Open the options page the built manifest declares; wait for the device section."""
    manifest = json.loads((browser.extension_dir / "manifest.json").read_text())
    driver = browser.driver
    driver.switch_to.window(browser.home)
    driver.get(browser.url(manifest["options_page"]))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        tier = driver.execute_script("return document.body.dataset.tier")
        if tier:
            break
        time.sleep(0.2)
    else:
        raise TimeoutError(driver.find_element("id", "tier").text)
    return {
        "tier": tier,
        "reason": driver.find_element("id", "tier").text,
        "device": driver.find_element("id", "device").text,
        "failure": driver.execute_script(
            "const p = document.getElementById('webgpu-failure'); return p.hidden ? '' : p.textContent"),
        "estimates": driver.find_element("id", "estimates").text,
    }


def popup_mode_labels(browser: ExtensionBrowser) -> list[str]:
    """The mode choices of the toolbar popup the built manifest declares, once the
    engine has said what this device would use."""
    manifest = json.loads((browser.extension_dir / "manifest.json").read_text())
    driver = browser.driver
    driver.switch_to.window(browser.home)
    driver.get(browser.url(manifest["action"]["default_popup"]))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        labels = driver.execute_script(
            "return [...document.getElementById('mode').options].map((o) => o.textContent)")
        if labels and ":" in labels[0]:
            return labels
        time.sleep(0.2)
    raise TimeoutError(f"the popup's modes were not labelled: {labels}")


def popup_labels_fit(driver) -> list[str]:
    """The mode labels the popup's select would cut short when chosen: each one's text
    measured in the select's own font against the room the select leaves it (its inner
    width less the padding and the drop-down arrow's ~24 px)."""
    return driver.execute_script(
        "const select = document.getElementById('mode'); const style = getComputedStyle(select);"
        "const ctx = document.createElement('canvas').getContext('2d'); ctx.font = style.font;"
        "const room = select.clientWidth - parseFloat(style.paddingLeft)"
        "  - parseFloat(style.paddingRight) - 24;"
        "return [...select.options].map((o) => o.textContent)"
        "  .filter((text) => ctx.measureText(text).width > room);")


def test_without_an_adapter_the_cpu_tier_is_chosen_and_explained(browser, image_server):
    assert popup_mode_labels(browser)[0] == "Automatic: Fast on the CPU"
    assert popup_labels_fit(browser.driver) == [], "the popup cuts these mode labels short"
    page = open_options(browser)
    assert page["tier"] == "wasm"
    assert "no WebGPU adapter" in page["reason"] and "Fast is the default" in page["reason"]
    assert "WebGPU adapter\nnone" in page["device"] and "SIMD, threads" in page["device"]
    # Automatic mode on this tier is Fast, on the CPU.
    outcome = browser.remove(image_server.url("chelsea.jpg"), "auto")
    assert outcome.state == "done", outcome.error
    assert outcome.result["mode"] == "fast" and outcome.result["backend"].startswith("wasm")


def test_a_software_adapter_is_probed_and_not_used_by_default(gpu_browser, image_server):
    page = open_options(gpu_browser)
    assert page["tier"] == "wasm"
    assert "software renderer" in page["reason"]
    assert "swiftshader" in page["device"]
    outcome = gpu_browser.remove(image_server.url("chelsea.jpg"), "auto")
    assert outcome.state == "done", outcome.error
    assert outcome.result["backend"].startswith("wasm") and not outcome.result["fallback"]


def test_every_mode_runs_with_no_model_host(gpu_browser, image_server):
    """Nothing listens on the build's default model host: the bundled models serve."""
    for mode in ("fast", "balanced", "portrait"):
        outcome = gpu_browser.remove(image_server.url("coffee.jpg"), mode, backend="wasm",
                                     model_side=None if mode == "fast" else 256)
        assert outcome.state == "done", f"{mode}: {outcome.error}"
    estimates = open_options(gpu_browser)["estimates"]
    assert "Balanced" in estimates and "measured on this device" in estimates


@pytest.mark.parametrize(("mode", "side"), [("portrait", 192), ("balanced", SMALL_SIDE),
                                            ("quality", SMALL_SIDE), ("fast", None)])
def test_model_on_webgpu_and_wasm_agrees_with_native(gpu_browser, image_server, png_alpha,
                                                     mode, side):
    """Each EP against native onnxruntime on the file it ran (Balanced runs the weight-only
    ISNet on WebGPU and the integer one on WASM: two files, each checked on its own)."""
    from cutout.modes import get_mode, pipeline_options
    from cutout.native.pipeline import load_rgba, predict_alpha
    from cutout.toolchain.build import MODELS_DIR
    from cutout.toolchain.models import load_manifest

    photo = load_rgba(image_server.folder / "astronaut.jpg")
    dynamic = {e.id: e.dynamic for e in load_manifest()}
    runs = {}
    for backend in ("webgpu", "wasm"):
        # A file fixed at its own size (Balanced's on WASM, 1024²) runs any feed at that
        # size inside, natively not: a small side only where the file takes any size.
        run_side = side if dynamic[get_mode(mode).model_on(backend)] else None
        options = pipeline_options(get_mode(mode)) | ({"model_side": run_side} if run_side else {})
        outcome = gpu_browser.remove(image_server.url("astronaut.jpg"), mode, timeout=900,
                                     backend=backend, model_side=run_side)
        assert outcome.state == "done", f"{backend}: {outcome.error}"
        assert outcome.result["backend"].startswith(backend), outcome.result
        assert not outcome.result["fallback"]
        model = outcome.result["model"]
        assert model == get_mode(mode).model_on(backend)
        alpha = png_alpha(outcome.png)
        native = predict_alpha(MODELS_DIR / f"{model}.onnx", photo, **options)
        iou, mae = agreement(alpha, native)
        assert iou >= 0.99 and mae <= 0.01, (backend, model, iou, mae)
        assert 0.05 < (alpha >= 128).mean() < 0.95  # a real mask, not an empty one
        runs[backend] = alpha
    if get_mode(mode).model_on("webgpu") == get_mode(mode).model_on("wasm"):
        iou, mae = agreement(runs["webgpu"], runs["wasm"])
        assert iou >= 0.99 and mae <= 0.01, (iou, mae)


PLACEMENT_JS = """
const [file, done] = [arguments[0], arguments[arguments.length - 1]];
(async () => {
  const ort = await import(chrome.runtime.getURL('vendor/ort/ort.webgpu.min.mjs'));
  ort.env.wasm.wasmPaths = chrome.runtime.getURL('vendor/ort/');
  ort.env.logLevel = 'verbose';
  const bytes = new Uint8Array(await (await fetch(chrome.runtime.getURL('models/' + file))).arrayBuffer());
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ['webgpu'], graphOptimizationLevel: 'all', logSeverityLevel: 0,
    extra: { session: { disable_quant_qdq: '1' } } });
  await session.release();
  return 'ok';
})().then(done, (e) => done(String(e)));
"""
PLACED = re.compile(r"Node\(s\) placed on \[(\w+)\]")
NODE = re.compile(r"VerifyEachNodeIsAssignedToAnEp\]\s+(\w+) \(([^)]*)\)")


def cpu_nodes(log: list[str]) -> list[tuple[str, str]]:
    nodes, provider = [], None
    for line in log:
        if m := PLACED.search(line):
            provider = m.group(1)
        elif provider == "CPUExecutionProvider" and (m := NODE.search(line)):
            nodes.append((m.group(1), m.group(2)))
    return nodes


def shape_nodes(path) -> tuple[set[str], set[str]]:
    """(nodes of the file whose outputs are all int64/int32 tensors, all node names)."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    types = {v.name: v.type.tensor_type.elem_type
             for v in (*model.graph.value_info, *model.graph.output, *model.graph.input)}
    types.update({t.name: t.data_type for t in model.graph.initializer})
    shape = {n.name for n in model.graph.node
             if all(types.get(o) in SHAPE_TYPES for o in n.output)}
    return shape, {n.name for n in model.graph.node}


@pytest.mark.parametrize("model_id", ["u2netp", "isnet", "modnet"])
def test_only_shape_arithmetic_stays_on_the_cpu(gpu_browser, extension_dir, model_id):
    """No silent CPU partitions: pixels (uint8 edges included) never leave the GPU."""
    driver = gpu_browser.driver
    driver.switch_to.window(gpu_browser.home)
    driver.get(gpu_browser.url("pages/popup/popup.html"))
    gpu_browser.console_log()  # drop what came before
    assert driver.execute_async_script(PLACEMENT_JS, f"{model_id}.onnx") == "ok"
    log = [entry["message"] for entry in gpu_browser.console_log()]
    assert any("placed on [WebGpuExecutionProvider]" in line for line in log), log[-20:]
    shape, in_file = shape_nodes(extension_dir / "models" / f"{model_id}.onnx")
    stray = [(op, name) for op, name in cpu_nodes(log)
             if name not in shape and (name in in_file or op not in SHAPE_OPS)]
    assert not stray, f"work on the CPU in {model_id}: {stray}"


def test_a_webgpu_failure_falls_back_and_is_shown(extension_dir, image_server):
    """A WebGPU run that does not answer in time (here: a 1 ms limit) re-runs on WASM and
    delivers; the reason is in the result and on the options page, and the next job does
    not try WebGPU again."""
    # SwiftShader runs one U2-Netp dispatch for seconds on a loaded 2-core machine: the
    # GPU watchdog may then kill the GPU process (CI saw a lost device mid-run as
    # "BufferManager::Download" failing). A real GPU never takes that long.
    with ExtensionBrowser(extension_dir, (*WEBGPU_ARGS, "--disable-gpu-watchdog")) as b:
        b.set_settings(webgpuTimeoutMs=1)
        first = b.remove(image_server.url("chelsea.jpg"), "portrait", backend="webgpu",
                         model_side=SMALL_SIDE)
        assert first.state == "done", first.error
        assert first.result["backend"].startswith("wasm")
        assert "no answer within" in first.result["fallback"]
        assert any("WebGPU failed" in note for note in first.result["notes"])
        second = b.remove(image_server.url("coffee.jpg"), "portrait", backend="webgpu",
                          model_side=SMALL_SIDE)
        assert second.state == "done", second.error
        assert second.result["backend"].startswith("wasm")
        assert "off after an earlier failure" in second.result["fallback"]
        page = open_options(b)
        assert "no answer within" in page["failure"]


def test_a_webgpu_load_ends_the_wasm_preload(gpu_browser, image_server):
    """The engine notes the model it loaded last on WASM so that the next start loads it
    while Pyodide boots. Once a model loads on WebGPU (a device whose WASM run was a
    fallback, now working again) that note goes: the next start preloads nothing."""
    from cutout.modes import WARM_MODEL_KEY

    def hint() -> str | None:
        gpu_browser._ensure_extension_page()
        return gpu_browser.driver.execute_script(
            "return localStorage.getItem(arguments[0]);", WARM_MODEL_KEY)

    def job(backend: str) -> dict:
        outcome = gpu_browser.remove(image_server.url("chelsea.jpg"), "portrait", timeout=900,
                                     backend=backend, model_side=SMALL_SIDE)
        assert outcome.state == "done", outcome.error
        assert outcome.result["backend"].startswith(backend), outcome.result
        return outcome.result["timings_ms"]

    # the options page's "Release models from memory", clicked: the next jobs load their models
    open_options(gpu_browser)
    gpu_browser.driver.find_element("id", "free-memory").click()
    deadline = time.monotonic() + 30
    while not re.search(r"released from memory|No model was loaded",
                        gpu_browser.driver.find_element("id", "status").text):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    job("wasm")
    assert "modnet" in json.loads(hint())["path"]
    job("webgpu")
    assert hint() is None
    assert gpu_browser.close_engine()
    assert "boot_warmModel" not in job("webgpu")  # the start after: nothing preloaded
