"""Model registry of the engine: manifest lookup, download, cache, integrity, sessions.

The manifest ships inside the extension (`models/manifest.json`, written by
`invoke models`). Small models are bundled; large ones are downloaded once
from the model host in byte ranges (a cut transfer resumes where it stopped),
stored in Cache Storage and re-verified on every load. A byte count or sha256
mismatch is an error that evicts the bad copy, never a silent fallback.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..modes import (COMPOSE_DOWNSCALE_GRAPH, COMPOSE_FIELDS_GRAPH, COMPOSE_STRIP_GRAPH,
                     IDLE_SESSION_MS, MODEL_CACHE, MODEL_CHUNK_BYTES, RESIZE_GRAPH,
                     WARM_MODEL_KEY, session_options)
from ..protocol import CutoutError
from . import _js
from .idle import idle_keys

MANIFEST_PATH = "models/manifest.json"

ProgressFn = Callable[[int, int], None]  # (bytes done, bytes total)


@dataclass(frozen=True)
class ModelInfo:
    id: str
    file: str
    bytes: int
    sha256: str
    native_size: tuple[int, int]  # (height, width) the model was made for
    bundled: bool = True
    dynamic: bool = False
    int8_compute: bool = False  # static QDQ: the session keeps its QDQ nodes
    optimized: bool = False  # saved optimised by the build: loaded without optimising

    @classmethod
    def from_manifest(cls, entry: dict[str, Any]) -> ModelInfo:
        size = entry["native_size"]
        size = (size, size) if isinstance(size, int) else size
        return cls(entry["id"], entry["file"], int(entry["bytes"]), entry["sha256"],
                   (int(size[0]), int(size[1])),
                   bool(entry.get("bundled", True)), bool(entry.get("dynamic", False)),
                   bool(entry.get("int8_compute", False)), bool(entry.get("optimized", False)))

    def session_options(self, backend: str) -> dict[str, object]:
        return session_options(backend, self.int8_compute, self.optimized)

    @property
    def cache_key(self) -> str:
        # Cache Storage wants an http(s) key; the hash in the path makes a new
        # model version a new entry instead of a stale hit.
        return f"https://models.invalid/{self.sha256}/{self.file}"

    def chunks(self) -> list[tuple[int, int]]:
        """Inclusive byte ranges of the Range requests."""
        return [(start, min(self.bytes, start + MODEL_CHUNK_BYTES) - 1)
                for start in range(0, self.bytes, MODEL_CHUNK_BYTES)]


@dataclass
class LoadedModel:
    info: ModelInfo
    session: Any
    backend: str
    load_notes: tuple[str, ...] = ()  # said to the jobs that waited for this load


class ModelRegistry:
    def __init__(self) -> None:
        self._manifest: dict[str, ModelInfo] | None = None
        self._loaded: dict[str, LoadedModel] = {}
        self._last_used: dict[str, float] = {}  # key -> time of its last job (ms)
        self._reaper: asyncio.Future[None] | None = None
        # One load per model even when jobs overlap: a second download would
        # race the first for the cached parts and build a second session.
        self._pending: dict[str, asyncio.Future[LoadedModel]] = {}
        # Called when the reaper has released the last session (JobRunner ends the
        # inference worker then, giving its memory back).
        self.on_empty: Callable[[], Any] | None = None

    async def manifest(self) -> dict[str, ModelInfo]:
        if self._manifest is None:
            response = await _js.fetch(_js.extension_url(MANIFEST_PATH), credentials="omit")
            raw = json.loads(str(await response.text()))
            self._manifest = {m["id"]: ModelInfo.from_manifest(m) for m in raw["models"]}
        return self._manifest

    async def info(self, model_id: str) -> ModelInfo:
        models = await self.manifest()
        if model_id not in models:
            raise CutoutError("model-missing", f"The model {model_id!r} is not part of this build.")
        return models[model_id]

    async def get(self, model_id: str, backend: str, host: str, progress: ProgressFn,
                  notes: list[str] | None = None) -> LoadedModel:
        """The model's session on `backend` ("wasm" or "webgpu"), loaded once; what its
        load has to say (a model that could not be stored) goes to `notes`."""
        key = f"{model_id}@{backend}"
        self._last_used[key] = _js.now_ms()
        self._reap_later()
        if key in self._loaded:
            return self._loaded[key]
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._load(model_id, backend, host, progress))
            self._pending[key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        loaded = await asyncio.shield(pending)
        if notes is not None:
            notes.extend(loaded.load_notes)
        return loaded

    def load_early(self, model_id: str, backend: str) -> None:
        """Start loading a bundled model in the background, while the job fetches and
        decodes its photo; the job's get() then awaits this same load. (A download
        reports its progress as the job's stage, so it waits for that stage.)"""
        async def load() -> None:
            if (await self.info(model_id)).bundled:
                await self.get(model_id, backend, "", lambda done, total: None)

        # Its errors are the job's get()'s to report (it loads again): retrieved here
        # only so that asyncio does not log them as lost.
        asyncio.ensure_future(load()).add_done_callback(
            lambda task: task.cancelled() or task.exception())

    async def _load(self, model_id: str, backend: str, host: str,
                    progress: ProgressFn) -> LoadedModel:
        info = await self.info(model_id)
        load_notes: list[str] = []
        # Every load asks for the boot's preload first; asking for another model (or for
        # WebGPU, never preloaded) releases it: no job of this start wanted it.
        session = await _js.take_warm_model(info.sha256 if backend == "wasm" else "")
        if session is None:
            buffer = await (bundled_bytes(info) if info.bundled
                            else cached_or_downloaded(info, host, progress, load_notes))
            await _js.next_task()  # let progress messages out: creating a session blocks
            session = await _js.create_session(_js.js_uint8(buffer), backend,
                                               info.session_options(backend))
        if backend == "wasm":
            remember_warm_model(info)
        else:  # this device runs on WebGPU again: its next start preloads no WASM model
            _js.drop_store(WARM_MODEL_KEY)
        label = f"wasm ({_js.wasm_threads()} threads)" if backend == "wasm" else "webgpu"
        loaded = LoadedModel(info, session, label, tuple(load_notes))
        self._loaded[f"{model_id}@{backend}"] = loaded
        return loaded

    async def state(self, model_id: str) -> dict[str, Any]:
        """What the popup shows of a model: {id, bytes, state}: "bundled" (in the
        extension), "stored" (downloaded, in Cache Storage) or "download" (not yet)."""
        info = await self.info(model_id)
        if info.bundled:
            state = "bundled"
        else:
            cache = await _js.open_cache(MODEL_CACHE)
            state = "stored" if await cache.match(info.cache_key) else "download"
        return {"id": info.id, "bytes": info.bytes, "state": state}

    def drop(self, backend: str) -> None:
        """Forget the sessions of `backend` (after a lost device they are unusable)."""
        self._release([k for k in self._loaded if k.endswith(f"@{backend}")])

    def _release(self, keys: list[str]) -> None:
        for key in keys:
            session = self._loaded.pop(key).session
            try:
                session.release()
            except _js.JsError:
                pass

    @property
    def empty(self) -> bool:
        """No model session loaded or being loaded."""
        return not self._loaded and not self._pending

    def release_all(self) -> list[str]:
        """Release every loaded model session now; the keys released."""
        keys = sorted(self._loaded)
        self._release(keys)
        return keys

    def _reap_later(self) -> None:
        """Release sessions unused for IDLE_SESSION_MS: an idle ISNet session holds
        hundreds of MB (weights unpacked to fp32, arenas) in the inference worker."""
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.ensure_future(self._reap())

    async def _reap(self) -> None:
        while self._loaded:
            await asyncio.sleep(IDLE_SESSION_MS / 4000)
            self._release(idle_keys(self._last_used, set(self._loaded), _js.now_ms()))
        if self.empty and self.on_empty is not None:
            await self.on_empty()

    async def resize_session(self) -> Any:
        """The antialiasing resize graph (toolchain.fuse.resize_model), always on WASM:
        the WebGPU EP cannot antialias, and the native pipeline runs the same graph."""
        return await self._graph_session(RESIZE_GRAPH)

    async def compose_sessions(self) -> tuple[Any, Any, Any]:
        """The compose graphs (toolchain.compose; downscale, fields, strip): the model's
        mask onto the full-size photo, strip by strip, edges refined, foreground colours
        decontaminated. On WASM, as natively."""
        return (await self._graph_session(COMPOSE_DOWNSCALE_GRAPH),
                await self._graph_session(COMPOSE_FIELDS_GRAPH),
                await self._graph_session(COMPOSE_STRIP_GRAPH))

    async def pass_session(self, file: str) -> Any:
        """One of a mode's extra-pass graphs (toolchain.passes: flip, mirror), on WASM."""
        return await self._graph_session(f"models/{file}")

    async def _graph_session(self, path: str) -> Any:
        # offscreen.js keeps one session per path (made while Pyodide boots for the
        # preloaded ones): no second cache here.
        try:
            return await _js.graph_session(path)
        except _js.JsError as e:
            raise CutoutError("model-missing", f"{path} could not be loaded from this "
                              f"build ({e}).") from None


def remember_warm_model(info: ModelInfo) -> None:
    """The hint offscreen.js reads at the next start to load this model while Pyodide
    boots: where the file is, what it must hash to, the session options."""
    where = {"path": f"models/{info.file}"} if info.bundled else {"cacheKey": info.cache_key}
    _js.save_store(WARM_MODEL_KEY, json.dumps({
        **where, "bytes": info.bytes, "sha256": info.sha256,
        "options": info.session_options("wasm")}))


async def bundled_bytes(info: ModelInfo) -> Any:
    response = await _js.fetch(_js.extension_url(f"models/{info.file}"), credentials="omit")
    if not response.ok:
        raise CutoutError("model-missing", f"The model file {info.file} could not be read "
                          f"(HTTP {response.status}).")
    buffer = await response.arrayBuffer()
    await verify(info, buffer)
    return buffer


async def cached_or_downloaded(info: ModelInfo, host: str, progress: ProgressFn,
                               notes: list[str] | None = None) -> Any:
    cache = await _js.open_cache(MODEL_CACHE)
    hit = await cache.match(info.cache_key)
    if hit:
        buffer = await hit.arrayBuffer()
        try:
            await verify(info, buffer)
            return buffer
        except CutoutError:
            await cache.delete(info.cache_key)  # corrupted on disk: fetch it again
    return await download(cache, info, host, progress, notes)


# Said with the result when the model could not be stored (storage full).
NOT_STORED = ("There was no room left to store the {id} model ({mb:.0f} MB), so it was used "
              "from memory and will be downloaded again next time. Free some disk space, or "
              "delete downloaded models in Cutout's options.")


async def download(cache: Any, info: ModelInfo, host: str, progress: ProgressFn,
                   notes: list[str] | None = None) -> Any:
    """Fetch the model in ranges into `cache` (parts already stored are skipped) and
    return its verified bytes. When the storage is full the download goes on in memory:
    the stored parts are dropped (nothing partial is kept) and NOT_STORED is added to
    `notes`."""
    if not host:
        raise CutoutError("no-model-host", f"The {info.id} model is not bundled and no model "
                          "host is set. Choose one in Cutout's options.")
    url = host.rstrip("/") + "/" + info.file
    done = 0
    in_memory: list[Any] | None = None  # the parts, once the storage refused one
    for index, (first, last) in enumerate(info.chunks()):
        key = f"{info.cache_key}.part{index}"
        stored = await cache.match(key)
        if in_memory is not None:
            in_memory.append(await stored.blob() if stored else
                             await _fetch_range(url, first, last, info, done))
        elif not stored:
            part = await _fetch_range(url, first, last, info, done)
            try:
                await _js.cache_put(cache, key, part)
            except CutoutError as e:
                if e.code != "storage-full":
                    raise
                in_memory = [await (await cache.match(f"{info.cache_key}.part{i}")).blob()
                             for i in range(index)] + [part]
                await _drop_parts(cache, info)
        done = last + 1
        progress(done, info.bytes)
    if in_memory is not None:
        buffer = await _js.concat_blobs(in_memory).arrayBuffer()
        await verify(info, buffer)
        if notes is not None:
            notes.append(NOT_STORED.format(id=info.id, mb=info.bytes / 1e6))
        return buffer
    parts = []
    for index in range(len(info.chunks())):
        stored = await cache.match(f"{info.cache_key}.part{index}")
        if not stored:  # deleted meanwhile (e.g. "Delete downloaded models")
            raise CutoutError("model-download", f"The {info.id} model download was interrupted "
                              "(its stored parts were deleted). Try again.")
        parts.append(await stored.blob())
    whole = _js.concat_blobs(parts)
    buffer = await whole.arrayBuffer()
    try:
        await verify(info, buffer)
    except CutoutError:
        await _drop_parts(cache, info)  # a part is bad; which one is unknowable
        raise
    try:
        await _js.cache_put(cache, info.cache_key, whole)
    except CutoutError as e:
        if e.code != "storage-full":
            raise
        if notes is not None:
            notes.append(NOT_STORED.format(id=info.id, mb=info.bytes / 1e6))
    await _drop_parts(cache, info)
    return buffer


async def _fetch_range(url: str, first: int, last: int, info: ModelInfo, done: int) -> Any:
    interrupted = CutoutError(
        "model-download", f"The {info.id} model download was interrupted at "
        f"{done / 1e6:.0f} of {info.bytes / 1e6:.0f} MB. Try again: it resumes where it stopped.")
    try:
        response = await _js.fetch_range(url, first, last)
    except _js.JsError:
        raise interrupted from None
    if response.status not in (200, 206):
        raise CutoutError("model-download", f"The model host refused the {info.id} model "
                          f"(HTTP {response.status} for {url}).")
    try:
        blob = await response.blob()
    except _js.JsError:
        raise interrupted from None
    if response.status == 200:  # host ignores Range: keep our slice of the whole file
        blob = blob.slice(first, last + 1)
    if int(blob.size) != last - first + 1:
        raise interrupted
    return blob


async def _drop_parts(cache: Any, info: ModelInfo) -> None:
    for index in range(len(info.chunks())):
        await cache.delete(f"{info.cache_key}.part{index}")


async def verify(info: ModelInfo, buffer: Any) -> None:
    size = int(buffer.byteLength)
    if size != info.bytes:
        raise CutoutError("model-corrupt", f"The model {info.id} is damaged ({size} bytes, "
                          f"expected {info.bytes}); it was not loaded.")
    digest = await _js.sha256_hex(buffer)
    if digest != info.sha256:
        raise CutoutError("model-corrupt", f"The model {info.id} failed its integrity check "
                          "(sha256 mismatch); it was not loaded.")

