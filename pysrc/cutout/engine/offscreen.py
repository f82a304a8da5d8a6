"""Entry point called by offscreen.js for every message addressed to the engine."""

from __future__ import annotations

from typing import Any

from ..modes import DEFAULT_MODE
from ..protocol import Envelope, Job, Target, Type
from . import _js
from .jobs import JobRunner
from .models import ModelRegistry

_registry = ModelRegistry()
_runner = JobRunner(_registry)


def handle(raw: Any) -> Any:
    """Dispatch one envelope; returns the (JS) reply for sendResponse."""
    message = Envelope.from_dict(raw.to_py() if hasattr(raw, "to_py") else raw)
    if message.target != Target.OFFSCREEN:
        return None
    if message.type == Type.REMOVE:
        data = message.data
        job = Job(str(data["id"]), str(data["src"]), str(data.get("mode") or DEFAULT_MODE),
                  str(data.get("modelHost") or ""))
        return _js.to_js({"job": job.id, "state": _runner.submit(job)})
    print(f"cutout engine: unknown message type {message.type!r}")
    return None
