"""This device: its capabilities (probed once per engine life and again after a
WebGPU failure), its tier, WebGPU's health, and the inference times it measured."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from .. import tiers
from ..modes import MODES
from . import _js

HISTORY_KEY = "cutout-run-history"  # localStorage of the extension origin


class Device:
    def __init__(self) -> None:
        self.caps: tiers.Capabilities | None = None
        self.tier: tiers.Tier | None = None
        self.health = tiers.WebGpuHealth()
        self.history = tiers.RunHistory(_load_history())

    async def probe(self) -> tiers.Capabilities:
        if self.caps is None:
            adapter, error = None, ""
            try:
                raw = await _js.gpu_adapter()
                if raw is not None:
                    adapter = tiers.Adapter(**_js.adapter_facts(raw))
            except _js.JsError as e:
                error = str(e)
            self.caps = tiers.Capabilities(adapter, error, **_js.host_facts())
            self.tier = tiers.choose_tier(self.caps)
        return self.caps

    async def plan(self, preference: str) -> tuple[list[str], str]:
        caps = await self.probe()
        assert self.tier is not None
        return tiers.plan_backends(preference, self.tier, caps, self.health, _js.now_ms())

    async def default_mode(self) -> str:
        await self.probe()
        assert self.tier is not None
        return self.tier.default_mode

    def webgpu_failed(self, reason: str) -> None:
        self.health.record_failure(reason, _js.now_ms(), lost=tiers.is_device_lost(reason))
        self.caps = None  # probe again: the adapter may be gone or replaced

    def label(self, backend: str, session_label: str) -> str:
        """What the result view says ran the model: "webgpu (<adapter>)" or the
        session's own label, e.g. "wasm (2 threads)"."""
        adapter = self.caps.adapter if self.caps else None
        if backend == tiers.WEBGPU and adapter is not None:
            return f"webgpu ({adapter.name})"
        return session_label

    def record(self, mode: str, backend: str, ms: float) -> None:
        self.history.record(mode, backend, ms)
        _js.save_store(HISTORY_KEY, json.dumps(self.history.runs))

    async def describe(self) -> dict[str, Any]:
        """What the options page shows: capabilities, tier and why, WebGPU's state,
        and per mode and backend this device's time (measured or estimated)."""
        caps = await self.probe()
        assert self.tier is not None
        estimates: dict[str, dict[str, Any]] = {}
        for name in MODES:
            for backend in tiers.BACKENDS:
                found = self.history.estimate_ms(name, backend)
                if found:
                    estimates.setdefault(name, {})[backend] = {"ms": round(found[0]),
                                                               "basis": found[1]}
        return {"capabilities": caps.to_dict(), "tier": asdict(self.tier),
                "modes": tiers.mode_plan(self.tier),
                "webgpu_failure": self.health.failure, "estimates": estimates}


def _load_history() -> dict[str, list[float]]:
    try:
        raw = json.loads(_js.load_store(HISTORY_KEY) or "{}")
    except ValueError:
        return {}
    return {str(k): [float(x) for x in v] for k, v in raw.items() if isinstance(v, list)}
