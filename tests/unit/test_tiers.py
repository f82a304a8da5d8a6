"""The tier policy: which backend and default mode a device gets, fallback state, estimates."""

from __future__ import annotations

import pytest

from cutout import tiers
from cutout.modes import MODES
from cutout.tiers import Adapter, Capabilities, RunHistory, WebGpuHealth

GPU = Adapter("nvidia", "ampere", "", True, 1 << 31, 1 << 30)
SWIFTSHADER = Adapter("google", "swiftshader", "", False, 1 << 30, 1 << 30, is_fallback=True)


def caps(adapter: Adapter | None) -> Capabilities:
    return Capabilities(adapter, cores=8, device_memory_gb=8.0)


def test_gpu_gets_balanced_on_webgpu():
    tier = tiers.choose_tier(caps(GPU))
    assert (tier.name, tier.default_mode) == ("webgpu", "balanced")
    assert "nvidia ampere" in tier.reason


@pytest.mark.parametrize("adapter,why", [
    (None, "no WebGPU adapter"),
    (SWIFTSHADER, "software renderer"),
    (Adapter("google", "swiftshader"), "software renderer"),  # no isFallbackAdapter flag
    (Adapter("intel", "gen-9", "", False, 1 << 30, 64 << 20), "64 MiB"),
])
def test_no_usable_gpu_gets_fast_on_wasm(adapter, why):
    tier = tiers.choose_tier(caps(adapter))
    assert (tier.name, tier.default_mode) == ("wasm", "fast")
    assert why in tier.reason


def test_every_default_mode_exists():
    for adapter in (None, GPU, SWIFTSHADER):
        assert tiers.choose_tier(caps(adapter)).default_mode in MODES


def plan(preference, adapter, health=None, now=0.0):
    c = caps(adapter)
    return tiers.plan_backends(preference, tiers.choose_tier(c), c, health or WebGpuHealth(), now)


def test_plans():
    assert plan("auto", GPU) == (["webgpu", "wasm"], "")  # WASM always stands behind
    assert plan("auto", None) == (["wasm"], "")
    assert plan("auto", SWIFTSHADER) == (["wasm"], "")
    assert plan("wasm", GPU) == (["wasm"], "")
    assert plan("webgpu", SWIFTSHADER) == (["webgpu", "wasm"], "")  # asked for: honoured
    backends, note = plan("webgpu", None)
    assert backends == ["wasm"] and "not available" in note
    with pytest.raises(ValueError, match="unknown backend"):
        plan("cuda", GPU)


def test_a_failed_webgpu_is_not_retried_on_every_click():
    health = WebGpuHealth()
    health.record_failure("Conv: unsupported", now_ms=0)
    backends, note = plan("auto", GPU, health, now=10 * tiers.LOST_DEVICE_RETRY_MS)
    assert backends == ["wasm"] and "Conv: unsupported" in note


def test_a_lost_device_is_tried_again_later():
    health = WebGpuHealth()
    health.record_failure("device lost: unknown", now_ms=1000, lost=tiers.is_device_lost("device lost"))
    assert plan("auto", GPU, health, now=1000 + tiers.LOST_DEVICE_RETRY_MS - 1)[0] == ["wasm"]
    assert plan("auto", GPU, health, now=1000 + tiers.LOST_DEVICE_RETRY_MS)[0] == ["webgpu", "wasm"]
    assert health.failure == ""


def test_estimates_from_own_runs_or_the_ratio_to_fast():
    history = RunHistory()
    assert history.estimate_ms("balanced", "wasm") is None
    for ms in (1000, 1200, 1100):
        history.record("fast", "wasm", ms)
    assert history.estimate_ms("fast", "wasm") == (1100, "measured on this device")
    ms, basis = history.estimate_ms("balanced", "wasm")
    assert ms == pytest.approx(1100 * tiers.COST_RATIO_TO_FAST["balanced"]) and "estimated" in basis
    history.record("balanced", "wasm", 7000)
    assert history.estimate_ms("balanced", "wasm") == (7000, "measured on this device")
    assert history.estimate_ms("balanced", "webgpu") is None  # other backend: no guess
    # Quality is estimated from the measured mode closest in cost: Balanced, not Fast.
    ms, basis = history.estimate_ms("quality", "wasm")
    ratio = tiers.COST_RATIO_TO_FAST["quality"] / tiers.COST_RATIO_TO_FAST["balanced"]
    assert ms == pytest.approx(7000 * ratio) and basis == "estimated from Balanced on this device"
    assert history.estimate_ms("portrait", "wasm")[1] == "estimated from Fast on this device"


def test_history_keeps_the_newest_runs():
    history = RunHistory()
    for ms in range(20):
        history.record("fast", "wasm", ms)
    assert history.runs["fast/wasm"] == [float(x) for x in range(20 - tiers.HISTORY_PER_KEY, 20)]


def test_mode_plan_names_backend_model_and_input_for_every_mode():
    for adapter, backend in ((GPU, "webgpu"), (None, "wasm")):
        plan = tiers.mode_plan(tiers.choose_tier(caps(adapter)))
        assert set(plan) == set(MODES)
        model = "isnet" if backend == "webgpu" else "isnet-wasm"  # integer kernels: CPU only
        assert plan["balanced"] == {"backend": backend, "model": model, "input": "1024x1024"}
        assert plan["portrait"]["input"] == "long side 512"
        assert plan["fast"]["model"] == ("u2netp" if backend == "webgpu" else "u2netp-wasm")


def test_idle_sessions_are_chosen_for_release():
    from cutout.engine.idle import idle_keys
    from cutout.modes import IDLE_SESSION_MS

    last = {"isnet@wasm": 0.0, "u2netp@wasm": IDLE_SESSION_MS}
    loaded = {"isnet@wasm", "u2netp@wasm", "modnet@webgpu"}  # modnet: never stamped
    assert idle_keys(last, loaded, IDLE_SESSION_MS) == ["isnet@wasm", "modnet@webgpu"]
    assert idle_keys(last, loaded, IDLE_SESSION_MS - 1) == ["modnet@webgpu"]
