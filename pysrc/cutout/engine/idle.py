"""Which model sessions to release: pure Python, so it is tested natively too."""

from __future__ import annotations

from ..modes import IDLE_SESSION_MS


def idle_keys(last_used: dict[str, float], loaded: set[str], now_ms: float,
              idle_ms: float = IDLE_SESSION_MS) -> list[str]:
    """Loaded sessions whose last job is at least `idle_ms` ago (never used: idle)."""
    return sorted(k for k in loaded if k not in last_used or now_ms - last_used[k] >= idle_ms)
