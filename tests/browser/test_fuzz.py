"""Fuzz the engine's decode path: random and mutated bytes of real JPEG, PNG, WebP and
GIF files, served as images. Every case must end, within a time bound, in a cut-out
or in one of the engine's specific messages (never "failed unexpectedly", never a
hang), and the engine must serve the next job afterwards.

Seeded (the cases are the same on every run); a failing case is named by its file."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

SEED = 20261203
CASES_PER_FORMAT = 6
SPECIFIC = ("could not be decoded", "is too large", "not supported")
JOB_TIMEOUT_S = 90  # a small image on Fast takes ~1 s; this bounds "nothing hangs"


def _originals(folder) -> dict[str, bytes]:
    """Small real files of each format, made from a sample photo."""
    photo = Image.open(folder / "chelsea.jpg").convert("RGB").resize((96, 64))
    out = {}
    for ext, fmt, extra in (("jpg", "JPEG", {"quality": 85}), ("png", "PNG", {}),
                            ("webp", "WEBP", {"quality": 80}), ("gif", "GIF", {})):
        buffer = io.BytesIO()
        photo.save(buffer, fmt, **extra)
        out[ext] = buffer.getvalue()
    return out


def _mutations(data: bytes, rng: random.Random) -> list[tuple[str, bytes]]:
    """(kind, bytes): truncated, bytes flipped past the header, a random body behind the
    real header, pure noise, the header repeated, a chunk duplicated."""
    n = len(data)
    flipped = bytearray(data)
    for _ in range(12):
        flipped[rng.randrange(16, n)] = rng.randrange(256)
    cut = rng.randrange(8, n - 1)
    chunk_at = rng.randrange(16, n - 64)
    return [
        ("truncated", data[:cut]),
        ("flipped", bytes(flipped)),
        ("noise-after-header", data[:16] + rng.randbytes(n - 16)),
        ("noise", rng.randbytes(rng.randrange(1, 4096))),
        ("header-only", data[:32] * 3),
        ("chunk-duplicated", data[:chunk_at] + data[chunk_at:chunk_at + 64] * 8 + data[chunk_at:]),
    ][:CASES_PER_FORMAT]


def test_mutated_images_end_in_a_result_or_a_specific_message(browser, image_server):
    rng = random.Random(SEED)
    folder = image_server.folder
    cases = []
    for ext, data in _originals(folder).items():
        for kind, mutated in _mutations(data, rng):
            name = f"fuzz-{kind}.{ext}"
            (folder / name).write_bytes(mutated)
            cases.append(name)

    outcomes = {}
    for name in cases:
        outcome = browser.remove(image_server.url(name), "fast", timeout=JOB_TIMEOUT_S)
        outcomes[name] = outcome
        assert outcome.state in ("done", "failed"), (name, outcome.state)
        if outcome.state == "failed":
            # One of the engine's own sentences (imagesize / errors.py), not a crash.
            assert any(m in outcome.error for m in SPECIFIC), (name, outcome.error)
        else:
            with Image.open(io.BytesIO(outcome.png)) as png:
                assert png.format == "PNG" and png.mode == "RGBA", name

    # Some mutations still decode (browsers conceal corrupt JPEG blocks), most do not:
    # both paths were taken.
    states = {o.state for o in outcomes.values()}
    assert states == {"done", "failed"}, {n: o.state for n, o in outcomes.items()}
    # And the engine is still fine.
    after = browser.remove(image_server.url("coffee.jpg"), "fast")
    assert after.state == "done", after.error


@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_the_fuzz_cases_are_stable(image_server, ext):
    """The same seed gives the same cases (a failure can be replayed)."""
    data = _originals(image_server.folder)[ext]
    assert _mutations(data, random.Random(SEED)) == _mutations(data, random.Random(SEED))
