"""A tiny smoke run of bench/smart_stroke_quality.py (one photo) so that it cannot rot:
the planted errors are mostly fixed and the numbers are shares. No timing asserted."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "smart_stroke_quality.py"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node")


def test_smart_stroke_quality_smoke_run(built_models):
    from cutout.toolchain.models import DEFAULT_OUT

    spec = importlib.util.spec_from_file_location("smart_stroke_quality", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rows, summary = script.measure(DEFAULT_OUT / built_models["isnet"].file, limit=1)
    assert {r["stroke"] for r in rows} == {"erase", "restore"}
    for r in rows:
        assert 0 <= r["fixed"] <= 1 and 0 <= r["collateral"] <= 1 and r["grabcut_ms"] > 0
    for kind in ("erase", "restore"):
        assert summary[kind]["areas"] == 2 and summary[kind]["fixed_mean"] > 0.5, summary
