"""Shared fixtures. The model fixtures build what they need (fetch + fuse,
about 2 s with a warm cache) instead of skipping, so the model tests always run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Tests run from a checkout without `pip install -e .`: import cutout from pysrc/.
if str(ROOT / "pysrc") not in sys.path:
    sys.path.insert(0, str(ROOT / "pysrc"))

SAMPLES = ROOT / "samples"
SAMPLE_NAMES = ["astronaut", "chelsea", "coffee"]


@pytest.fixture(scope="session")
def built_models():
    """ModelEntry list for build/models/, (re)built from the pinned sources."""
    from cutout.toolchain.models import build_models

    return {e.id: e for e in build_models()}


@pytest.fixture(scope="session")
def u2netp_fused(built_models) -> Path:
    from cutout.toolchain.models import DEFAULT_OUT

    return DEFAULT_OUT / built_models["u2netp"].file


@pytest.fixture(scope="session")
def u2netp_original(built_models) -> Path:
    """The verified original rembg export (fetched by build_models)."""
    from cutout.toolchain.fetch import DEFAULT_CACHE
    from cutout.toolchain.models import load_sources

    src = next(s for s in load_sources() if s.id == "u2netp")
    return src.fetch(DEFAULT_CACHE)


@pytest.fixture(params=SAMPLE_NAMES)
def sample_path(request) -> Path:
    return SAMPLES / f"{request.param}.jpg"
