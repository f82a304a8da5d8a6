"""Entry point called by offscreen.js for every message addressed to the engine."""

from __future__ import annotations

from typing import Any

from ..modes import DEFAULT_MODE, MODES
from ..protocol import CutoutError, Envelope, Job, Target, Type
from . import _js
from .device import Device
from .jobs import JobRunner
from .models import ModelRegistry

_registry = ModelRegistry()
_device = Device()
_runner = JobRunner(_registry, _device)


def handle(raw: Any) -> Any:
    """Dispatch one envelope; returns the (JS) reply for sendResponse."""
    message = Envelope.from_dict(raw.to_py() if hasattr(raw, "to_py") else raw)
    if message.target != Target.OFFSCREEN:
        return None
    if message.type == Type.REMOVE:
        data = message.data
        side, timeout = data.get("modelSide"), data.get("webgpuTimeoutMs")
        fetch_timeout = data.get("fetchTimeoutMs")
        job = Job(str(data["id"]), str(data["src"]), str(data.get("mode") or DEFAULT_MODE),
                  str(data.get("modelHost") or ""), str(data.get("backend") or "auto"),
                  model_side(side), float(timeout) if timeout else None,
                  float(fetch_timeout) if fetch_timeout else None)
        return _js.to_js({"job": job.id, "state": _runner.submit(job)})
    if message.type == Type.DEVICE_INFO:
        return _device_info()
    if message.type == Type.ZIP:
        import asyncio

        ids = [str(i) for i in message.data.get("jobs") or []]
        return asyncio.ensure_future(_zip(ids))
    if message.type == Type.REGION:
        import asyncio

        data = message.data
        return asyncio.ensure_future(_region(str(data.get("job") or ""), dict(data.get("box") or {}),
                                             str(data.get("modelHost") or ""),
                                             str(data.get("mode") or "")))
    if message.type == Type.RELEASE_MODELS:
        import asyncio

        return asyncio.ensure_future(_release_models())
    print(f"cutout engine: unknown message type {message.type!r}")
    return None


def model_side(value: Any) -> int | None:
    """A requested input side for dynamic models: a multiple of 32 in 64..2048."""
    if value in (None, ""):
        return None
    side = int(value)
    return side if 64 <= side <= 2048 and side % 32 == 0 else None


def _device_info() -> Any:
    """A Future (thenable in JS) of what the options page shows about this device."""
    import asyncio

    async def describe() -> Any:
        info = await _device.describe()
        # Per mode, the model it would run on this tier's backend and whether it is
        # bundled, stored or still to download (the popup shows it at a glance).
        backend = info["tier"]["name"]
        info["wasm_threads"] = _js.wasm_threads()
        info["models"] = {}
        for name, mode in MODES.items():
            try:
                info["models"][name] = await _registry.state(mode.model_on(backend))
            except CutoutError:
                continue  # not part of this build: the job itself will say so
        return _js.to_js(info)

    return asyncio.ensure_future(describe())


async def _region(job_id: str, box: dict[str, Any], model_host: str, mode: str) -> Any:
    """The reply to Refine's region tool: its result, or {error} a person can act on."""
    try:
        if not all(isinstance(box.get(k), (int, float)) for k in ("x", "y", "w", "h")):
            raise CutoutError("region-box", "The box to re-run is not valid.")
        return _js.to_js(await _runner.cut_region(job_id, box, model_host, mode))
    except CutoutError as e:
        return _js.to_js({"error": e.message})


async def _release_models() -> Any:
    return _js.to_js(await _runner.release_models())


async def _zip(ids: list[str]) -> Any:
    return _js.to_js(await _runner.zip_results(ids))
