"""Model registry of the engine: manifest lookup, integrity check, session cache.

The manifest ships inside the extension (`models/manifest.json`, written by
`invoke models`). Every load is verified against its byte count and sha256
before onnxruntime sees it; a mismatch is an error, never a silent fallback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..protocol import CutoutError
from . import _js

MANIFEST_PATH = "models/manifest.json"


@dataclass(frozen=True)
class ModelInfo:
    id: str
    file: str
    bytes: int
    sha256: str
    native_size: int

    @classmethod
    def from_manifest(cls, entry: dict[str, Any]) -> ModelInfo:
        return cls(entry["id"], entry["file"], int(entry["bytes"]), entry["sha256"],
                   int(entry["native_size"]))


@dataclass
class LoadedModel:
    info: ModelInfo
    session: Any
    backend: str
    load_ms: float


class ModelRegistry:
    def __init__(self) -> None:
        self._manifest: dict[str, ModelInfo] | None = None
        self._loaded: dict[str, LoadedModel] = {}

    async def manifest(self) -> dict[str, ModelInfo]:
        if self._manifest is None:
            response = await _js.fetch(_js.extension_url(MANIFEST_PATH), credentials="omit")
            raw = json.loads(str(await response.text()))
            self._manifest = {m["id"]: ModelInfo.from_manifest(m) for m in raw["models"]}
        return self._manifest

    async def get(self, model_id: str) -> LoadedModel:
        if model_id in self._loaded:
            return self._loaded[model_id]
        models = await self.manifest()
        if model_id not in models:
            raise CutoutError("model-missing", f"The model {model_id!r} is not part of this build.")
        info = models[model_id]
        start = _js.now_ms()
        response = await _js.fetch(_js.extension_url(f"models/{info.file}"), credentials="omit")
        if not response.ok:
            raise CutoutError("model-missing", f"The model file {info.file} could not be read "
                              f"(HTTP {response.status}).")
        buffer = await response.arrayBuffer()
        await verify(info, buffer)
        session = await _js.create_session(_js.js_uint8(buffer), ["wasm"])
        loaded = LoadedModel(info, session, f"wasm ({_js.wasm_threads()} threads)",
                             _js.now_ms() - start)
        self._loaded[model_id] = loaded
        return loaded

    def loaded_ids(self) -> list[str]:
        return sorted(self._loaded)


async def verify(info: ModelInfo, buffer: Any) -> None:
    size = int(buffer.byteLength)
    if size != info.bytes:
        raise CutoutError("model-corrupt", f"The model {info.id} is damaged ({size} bytes, "
                          f"expected {info.bytes}); it was not loaded.")
    digest = await _js.sha256_hex(buffer)
    if digest != info.sha256:
        raise CutoutError("model-corrupt", f"The model {info.id} failed its integrity check "
                          "(sha256 mismatch); it was not loaded.")
