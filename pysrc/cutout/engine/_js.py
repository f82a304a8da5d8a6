"""All interop with the browser lives here; no other module imports `js`.

`cutout_host` is registered by offscreen.js: `createSession` (onnxruntime-web,
which runs in a worker of the offscreen document), `post(message)` (to the
pages' BroadcastChannel) and a few browser facts. Every options
object goes through `to_js` with `Object.fromEntries`: a dict that became a
JS `Map` would be silently ignored by the browser APIs.
"""

from __future__ import annotations

from typing import Any

import js  # type: ignore[import-not-found]
from pyodide.ffi import JsException, create_proxy, to_js as _to_js  # type: ignore[import-not-found]

import cutout_host  # type: ignore[import-not-found]


JsError = JsException


def to_js(value: Any) -> Any:
    return _to_js(value, dict_converter=js.Object.fromEntries)


async def next_task() -> None:
    """Yield to the browser's event loop for one macrotask (setTimeout 0)."""
    await js.Promise.new(lambda resolve, reject: js.setTimeout(resolve, 0))


def now_ms() -> float:
    return float(js.performance.now())


def post(message: dict[str, Any]) -> None:
    cutout_host.post(to_js(message))


def extension_url(path: str) -> str:
    return str(cutout_host.getURL(path))


async def fetch(url: str, credentials: str = "include") -> Any:
    return await js.fetch(url, to_js({"credentials": credentials}))


async def fetch_image(url: str, timeout_ms: float, max_bytes: int) -> Any:
    """{ok, status, statusText, url, redirected, contentType, blob} of the chosen image;
    raises JsError "timeout", "too-large: <bytes>" or "network: <why>" (offscreen.js)."""
    return await cutout_host.fetchImage(url, timeout_ms, max_bytes)


async def read_upload(upload_id: str) -> Any:
    """The Blob the user opened from disk / pasted / dropped, or None if it is gone."""
    return await cutout_host.readUpload(upload_id)  # JS undefined arrives as None


async def sha256_hex(buffer: Any) -> str:
    digest = await js.crypto.subtle.digest("SHA-256", buffer)
    return bytes(js.Uint8Array.new(digest).to_py()).hex()


async def blob_head(blob: Any, size: int) -> bytes:
    """The first `size` bytes of a Blob, copied into Python (small: a header)."""
    buffer = await blob.slice(0, size).arrayBuffer()
    return bytes(js.Uint8Array.new(buffer).to_py())


async def decode(blob: Any, width: int | None = None, height: int | None = None) -> Any:
    """An ImageBitmap of `blob`, optionally resized (high quality) to width x height."""
    options: dict[str, Any] = {"premultiplyAlpha": "none", "imageOrientation": "from-image"}
    if width is not None and height is not None:
        options.update(resizeWidth=width, resizeHeight=height, resizeQuality="high")
    return await js.createImageBitmap(blob, to_js(options))


async def decode_region(blob: Any, x: int, y: int, width: int, height: int) -> Any:
    """An ImageBitmap of the width x height part of `blob` at (x, y), upright (as the
    full decode: EXIF orientation applied)."""
    return await js.createImageBitmap(blob, x, y, width, height, to_js(
        {"premultiplyAlpha": "none", "imageOrientation": "from-image"}))


def rgba_pixels(bitmap: Any) -> Any:
    """The bitmap's RGBA bytes as a Uint8Array (stays in JS: no copy into Python)."""
    w, h = bitmap.width, bitmap.height
    ctx = js.OffscreenCanvas.new(w, h).getContext("2d", to_js({"willReadFrequently": True}))
    ctx.drawImage(bitmap, 0, 0)
    data = ctx.getImageData(0, 0, w, h).data
    return js.Uint8Array.new(data.buffer, data.byteOffset, data.length)


def uint8_tensor(data: Any, dims: list[int]) -> dict[str, Any]:
    """A feed for `run_session` ({type, data, dims}; the worker makes the ort.Tensor)."""
    return {"type": "uint8", "data": data, "dims": dims}


def int32_tensor(values: list[int]) -> dict[str, Any]:
    return {"type": "int32", "data": js.Int32Array.new(to_js(values)), "dims": [len(values)]}


async def create_session(model_bytes: Any, backend: str, options: dict[str, Any]) -> Any:
    """A session (in the inference worker) on "wasm" (the plain WASM build) or
    "webgpu" (onnxruntime-web's WebGPU build, imported on first use only), with
    onnxruntime-web session `options` (modes.session_options).
    `model_bytes` (a Uint8Array) is transferred to the worker: do not reuse it."""
    return await cutout_host.createSession(model_bytes, backend, to_js(options))


async def take_warm_model(sha256: str) -> Any:
    """The session offscreen.js preloaded while Pyodide booted if it is the model with
    this sha256 (checked there), else None; it is handed out once."""
    return await cutout_host.takeWarmModel(sha256)


async def graph_session(path: str) -> Any:
    """The session of a bundled pixel graph (resize, compose, …) on WASM: offscreen.js
    starts creating these while Pyodide boots, so the first job does not wait for them."""
    return await cutout_host.graphSession(path)


def boot_timings() -> dict[str, float]:
    """Milestones of the engine's start-up, ms since the offscreen document began
    loading: script (offscreen.js running), pyodide, wheel, engine (imported)."""
    return {str(k): float(v) for k, v in cutout_host.bootTimings.to_py().items()}


def end_inference() -> bool:
    """End the inference worker and every session in it unless a call is under way
    (then False). Sessions made before are unusable afterwards: drop them first."""
    return bool(cutout_host.recycleInference())


async def gpu_adapter() -> Any:
    """The browser's WebGPU adapter (high-performance preference), or None."""
    gpu = getattr(js.navigator, "gpu", None)
    if gpu is None:
        return None
    adapter = await gpu.requestAdapter(to_js({"powerPreference": "high-performance"}))
    return None if adapter is None or type(adapter).__name__ == "JsNull" else adapter


def adapter_facts(adapter: Any) -> dict[str, Any]:
    info = getattr(adapter, "info", None)
    limits = adapter.limits

    def text(name: str) -> str:
        return str(getattr(info, name, "") or "") if info is not None else ""

    return {"vendor": text("vendor"), "architecture": text("architecture"),
            "description": text("description"),
            "shader_f16": bool(adapter.features.has("shader-f16")),
            "max_buffer_size": int(limits.maxBufferSize),
            "max_storage_buffer_binding_size": int(limits.maxStorageBufferBindingSize),
            "is_fallback": bool(getattr(info, "isFallbackAdapter", False)
                                or getattr(adapter, "isFallbackAdapter", False))}


def host_facts() -> dict[str, Any]:
    nav = js.navigator
    memory = getattr(nav, "deviceMemory", None)
    return {"cores": int(getattr(nav, "hardwareConcurrency", 1) or 1),
            "device_memory_gb": float(memory) if memory else None,
            "wasm_simd": bool(cutout_host.wasmSimd()),
            "wasm_threads": bool(getattr(js, "SharedArrayBuffer", None) is not None)}


def watch_device_lost(callback: Any) -> None:
    """Call `callback(message)` whenever a WebGPU device onnxruntime uses is lost
    (register once: the proxy lives as long as the engine)."""
    cutout_host.watchDeviceLost(create_proxy(callback))


def load_store(key: str) -> str | None:
    value = js.localStorage.getItem(key)
    return None if value is None else str(value)


def save_store(key: str, value: str) -> None:
    js.localStorage.setItem(key, value)


def drop_store(key: str) -> None:
    js.localStorage.removeItem(key)


async def run_session(session: Any, feeds: dict[str, Any], fetch: list[str] | None = None) -> Any:
    """The outputs named in `fetch` (default: all), each {type, data, dims}, by name."""
    return await session.run(to_js(feeds), to_js(fetch) if fetch else None)


def photo_canvas(bitmap: Any) -> Any:
    """A 2D context holding `bitmap` (kept on the CPU: the compose reads and writes it
    strip by strip, and the PNG is encoded from it)."""
    canvas = js.OffscreenCanvas.new(bitmap.width, bitmap.height)
    ctx = canvas.getContext("2d", to_js({"willReadFrequently": True}))
    ctx.drawImage(bitmap, 0, 0)
    return ctx


def read_rows(ctx: Any, first: int, stop: int) -> Any:
    """Rows [first, stop) of the canvas as straight RGBA bytes (a Uint8Array)."""
    data = ctx.getImageData(0, first, ctx.canvas.width, stop - first).data
    return js.Uint8Array.new(data.buffer, data.byteOffset, data.length)


def write_rows(ctx: Any, rgba: Any, first: int) -> None:
    """Straight RGBA bytes (whole rows) into the canvas from row `first` on."""
    width = int(ctx.canvas.width)
    pixels = js.Uint8ClampedArray.new(rgba.buffer, rgba.byteOffset, rgba.length)
    ctx.putImageData(js.ImageData.new(pixels, width, int(rgba.length) // (4 * width)), 0, first)


async def canvas_png(ctx: Any) -> Any:
    return await ctx.canvas.convertToBlob(to_js({"type": "image/png"}))


def float32_tensor(data: Any, dims: list[int]) -> dict[str, Any]:
    return {"type": "float32", "data": data, "dims": dims}


def joined_float32(parts: list[Any]) -> Any:
    """One Float32Array of `parts` end to end."""
    out = js.Float32Array.new(sum(int(p.length) for p in parts))
    offset = 0
    for part in parts:
        out.set(part, offset)
        offset += int(part.length)
    return out


def float32_range(data: Any, first: int, stop: int) -> Any:
    """A copy of elements [first, stop) (a view would post its whole buffer)."""
    return data.slice(first, stop)


async def url_blob(url: str) -> Any:
    """The Blob behind a blob: URL this document made."""
    return await (await js.fetch(url)).blob()


async def url_bytes(url: str) -> bytes:
    """The bytes behind a blob: URL this document made (one copy into Python)."""
    return await _blob_bytes(await (await js.fetch(url)).blob())


async def refined_png(job_id: str) -> bytes | None:
    """The Refine view's saved PNG of `job_id` (IndexedDB), if the user refined it."""
    blob = await cutout_host.readRefined(job_id)
    return await _blob_bytes(blob) if blob else None


async def _blob_bytes(blob: Any) -> bytes:
    return (await blob.arrayBuffer()).to_bytes()


def blob_from_bytes(data: bytes, content_type: str) -> Any:
    """A Blob of `data` (one copy into a JS Uint8Array)."""
    array = js.Uint8Array.new(len(data))
    array.assign(data)
    return js.Blob.new(to_js([array]), to_js({"type": content_type}))


def blob_url(blob: Any) -> str:
    return str(js.URL.createObjectURL(blob))


def revoke_blob_url(url: str) -> None:
    js.URL.revokeObjectURL(url)


def wasm_threads() -> int:
    return int(cutout_host.wasmThreads)


async def with_timeout(awaitable: Any, ms: float) -> Any:
    """`awaitable`'s result, or TimeoutError after `ms` (the awaitable keeps running)."""
    import asyncio

    return await asyncio.wait_for(awaitable, ms / 1000)


def js_uint8(buffer: Any) -> Any:
    return js.Uint8Array.new(buffer)


async def open_cache(name: str) -> Any:
    return await js.caches.open(name)


async def cache_put(cache: Any, key: str, blob: Any) -> None:
    try:
        await cache.put(key, js.Response.new(blob))
    except JsException as e:
        # Over quota: QuotaExceededError; a full disk (measured: the profile on a full
        # tmpfs, Chromium 156): "UnknownError: … Unexpected internal error."
        if "Quota" in str(e) or "UnknownError" in str(e):
            from ..protocol import CutoutError

            raise CutoutError("storage-full", "There is no room left to store the model. "
                              "Free some disk space, or clear Cutout's cached models in its "
                              "options.") from None
        raise


async def fetch_range(url: str, first: int, last: int) -> Any:
    headers = {"Range": f"bytes={first}-{last}"}
    return await js.fetch(url, to_js({"headers": headers, "credentials": "omit", "cache": "no-store"}))


def concat_blobs(blobs: list[Any]) -> Any:
    return js.Blob.new(to_js(blobs))
