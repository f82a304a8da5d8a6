"""Capability tiers: which backend and which default mode a device gets, and why.

Pure Python (no `js`): the engine fills `Capabilities` from the browser
(engine/capabilities.py) and asks this module; the tests drive it directly.

The figures behind the policy are measured (docs/BENCHMARKS.md, docs/MODELS.md):
- WASM on a 2-core machine: Fast 0.8 s, Balanced 4.2 s, Quality 8.1 s, Portrait 0.5 s
  per photo, hence the cost ratios to Fast below; Balanced is a choice, not a
  default, there.
- WebGPU on a real GPU (onnxruntime's WebGPU EP, same WGSL kernels): Balanced's
  ISNet at 1024² runs in about 0.1 s, so a GPU tier defaults to Balanced.
- SwiftShader, Chromium's software WebGPU adapter, ran U²-Netp at 320 in 164 s
  against 2.7 s on WASM: a software adapter is no GPU and gets the WASM tier.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
import math
from statistics import median
from typing import Any

from .modes import MODES

WEBGPU = "webgpu"
WASM = "wasm"
BACKENDS = (WEBGPU, WASM)
PREFERENCES = ("auto", WEBGPU, WASM)

# ISNet at 1024² holds 64-channel 512² activations (64 MiB in fp32): an adapter
# that cannot bind that much in one storage buffer cannot run Balanced.
MIN_STORAGE_BINDING = 128 << 20
SOFTWARE_ADAPTERS = ("swiftshader", "llvmpipe", "lavapipe", "warp")

# Model time of each mode relative to Fast on the same backend (what the history
# records: medians of the model runs in `invoke bench --peer` on davis345 photos, WASM
# 2 threads, 2026-12-06 T100417 / T101551 / T130537: Balanced 4.96 / 5.16 / 5.29,
# Quality 10.1 / 10.2 / 10.4, Portrait 0.72 / 0.66 / 0.78 × Fast's 0.65-0.73 s).
# Used until this device has timed a mode itself.
COST_RATIO_TO_FAST = {"fast": 1.0, "balanced": 5.1, "quality": 10.2, "portrait": 0.7}

# A WebGPU run that has not answered after this long is treated as hung and the
# job re-runs on WASM (the first run compiles shaders: seconds on a real GPU).
WEBGPU_RUN_TIMEOUT_MS = 60_000
# After a lost device WebGPU is tried again this much later; after any other
# failure it stays off until the engine restarts (browser restart, extension reload).
LOST_DEVICE_RETRY_MS = 5 * 60_000
HISTORY_PER_KEY = 9  # runs kept per (mode, backend) for the time estimate


@dataclass(frozen=True)
class Adapter:
    vendor: str = ""
    architecture: str = ""
    description: str = ""
    shader_f16: bool = False
    max_buffer_size: int = 0
    max_storage_buffer_binding_size: int = 0
    is_fallback: bool = False

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.vendor, self.architecture, self.description) if p) \
            or "unnamed adapter"

    @property
    def is_software(self) -> bool:
        text = f"{self.vendor} {self.architecture} {self.description}".lower()
        return self.is_fallback or any(s in text for s in SOFTWARE_ADAPTERS)


@dataclass(frozen=True)
class Capabilities:
    adapter: Adapter | None
    adapter_error: str = ""  # why there is no adapter, when the browser says
    wasm_simd: bool = True
    wasm_threads: bool = True
    cores: int = 1
    device_memory_gb: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Tier:
    name: str  # "webgpu" or "wasm"
    default_mode: str
    reason: str  # one sentence for the options page


def mode_plan(tier: Tier) -> dict[str, dict[str, Any]]:
    """Per mode on `tier`: backend, model and input. Both tiers run the same model at
    the same input: quality is the model's (WebGPU and WASM agree to IoU 0.99), and
    ISNet measured best at the 1024² it was trained on (docs/MODELS.md); what a GPU
    buys is time, so it changes the default mode, not the models."""
    plan = {}
    for mode in MODES.values():
        if mode.model_side is None:
            size = "320x320"  # U²-Netp's fixed input
        elif mode.keep_aspect:
            size = f"long side {mode.model_side}"
        else:
            size = f"{mode.model_side}x{mode.model_side}"
        plan[mode.name] = {"backend": tier.name, "model": mode.model_on(tier.name),
                           "input": size}
    return plan


def choose_tier(caps: Capabilities) -> Tier:
    adapter = caps.adapter
    if adapter is None:
        why = f" ({caps.adapter_error})" if caps.adapter_error else ""
        return Tier(WASM, "fast", f"This browser offers no WebGPU adapter{why}, so models run "
                    f"on the CPU (WebAssembly, {caps.cores} cores): Fast is the default.")
    if adapter.is_software:
        return Tier(WASM, "fast", f"The only WebGPU adapter is a software renderer "
                    f"({adapter.name}), far slower than WebAssembly on the CPU: Fast on "
                    "the CPU is the default.")
    if adapter.max_storage_buffer_binding_size < MIN_STORAGE_BINDING:
        mib = adapter.max_storage_buffer_binding_size >> 20
        return Tier(WASM, "fast", f"The GPU ({adapter.name}) binds only {mib} MiB per buffer, "
                    "too little for the larger models: Fast on the CPU is the default.")
    return Tier(WEBGPU, "balanced", f"WebGPU on {adapter.name}: Balanced runs on the GPU "
                "in about a second, so it is the default.")


@dataclass
class WebGpuHealth:
    """Whether WebGPU may be tried now. A failed WebGPU is not retried on every click;
    a lost device (driver reset, sleep) is tried again after LOST_DEVICE_RETRY_MS."""

    failure: str = ""
    lost: bool = False
    failed_at_ms: float = 0.0

    def record_failure(self, reason: str, now_ms: float, lost: bool = False) -> None:
        self.failure, self.lost, self.failed_at_ms = reason, lost, now_ms

    def usable(self, now_ms: float) -> bool:
        if not self.failure:
            return True
        if self.lost and now_ms - self.failed_at_ms >= LOST_DEVICE_RETRY_MS:
            self.failure, self.lost = "", False  # try the new device
            return True
        return False


def is_device_lost(error: str) -> bool:
    text = error.lower()
    return "device lost" in text or "device was lost" in text or "devicelost" in text


def plan_backends(preference: str, tier: Tier, caps: Capabilities, health: WebGpuHealth,
                  now_ms: float) -> tuple[list[str], str]:
    """Backends to try in order, and a note when the preference could not be met.

    "auto" follows the tier; "webgpu" uses any adapter, a software one too (the
    user asked), and still falls back to WASM; "wasm" never touches the GPU.
    """
    if preference not in PREFERENCES:
        raise ValueError(f"unknown backend {preference!r} (known: {', '.join(PREFERENCES)})")
    if preference == WASM:
        return [WASM], ""
    if preference == "auto" and tier.name == WASM:
        return [WASM], ""
    if caps.adapter is None:
        return [WASM], "WebGPU is not available in this browser; ran on the CPU (WebAssembly)."
    if not health.usable(now_ms):
        return [WASM], f"WebGPU is off after an earlier failure ({health.failure}); ran on the CPU."
    return [WEBGPU, WASM], ""


@dataclass
class RunHistory:
    """Inference times this device measured, per (mode, backend), newest last."""

    runs: dict[str, list[float]] = field(default_factory=dict)

    @staticmethod
    def key(mode: str, backend: str) -> str:
        return f"{mode}/{backend}"

    def record(self, mode: str, backend: str, ms: float) -> None:
        times = self.runs.setdefault(self.key(mode, backend), [])
        times.append(round(ms, 1))
        del times[:-HISTORY_PER_KEY]

    def estimate_ms(self, mode: str, backend: str) -> tuple[float, str] | None:
        """This device's own median for `mode`, else the median of the measured mode
        whose cost is closest to it (Quality from Balanced, not from Fast) times the
        ratio of their costs; None before anything ran on `backend`."""
        own = self.runs.get(self.key(mode, backend))
        if own:
            return median(own), "measured on this device"
        if mode not in COST_RATIO_TO_FAST:
            return None
        cost = COST_RATIO_TO_FAST[mode]
        measured = [(abs(math.log(COST_RATIO_TO_FAST[m] / cost)), m) for m in COST_RATIO_TO_FAST
                    if self.runs.get(self.key(m, backend))]
        if not measured:
            return None
        base = min(measured)[1]
        label = MODES[base].label.split(" (")[0] if base in MODES else base
        return (median(self.runs[self.key(base, backend)]) * cost / COST_RATIO_TO_FAST[base],
                f"estimated from {label} on this device")
