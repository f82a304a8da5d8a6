"""Regenerate samples/: small, clearly licensed photos from the scikit-image wheel.

The JPEGs are committed; this module documents (and can repeat) where they came
from. The PNG pins are on the wheel members, which are the same in every
platform wheel of scikit-image 0.26.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from cutout.toolchain.fetch import DEFAULT_CACHE, REPO_ROOT, fetch_pypi_member

PACKAGE, VERSION = "scikit-image", "0.26.0"
SAMPLES_DIR = REPO_ROOT / "samples"
JPEG_QUALITY = 90  # keeps each photo < 100 KB
FETCHERS_SHA256 = "50e6234fa2170820eaf8d0f8f42b51905822afc3680a4f09113fa11d435f7fb4"


@dataclass(frozen=True)
class Sample:
    name: str
    sha256: str  # of skimage/data/<name>.png
    subject: str
    licence: str  # verbatim line of its docstring in skimage/data/_fetchers.py


SAMPLES = [
    Sample("astronaut", "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
           "Eileen Collins, NASA astronaut (a person; NASA Great Images database)",
           "No known copyright restrictions, released into the public domain."),
    Sample("chelsea", "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
           "Chelsea the cat",
           "No copyright restrictions.  CC0 by the photographer (Stefan van der Walt)."),
    Sample("coffee", "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
           "a coffee cup (courtesy of Pikolo Espresso Bar)",
           "No copyright restrictions.  CC0 by the photographer (Rachel Michetti)."),
]


def make_samples(out_dir: Path = SAMPLES_DIR, cache: Path = DEFAULT_CACHE) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = Path(cache) / "sources" / "skimage"
    # The docstrings are the licence record; fail if a quoted line drifted.
    fetchers = fetch_pypi_member(PACKAGE, VERSION, "skimage/data/_fetchers.py", FETCHERS_SHA256,
                                 raw / "_fetchers.py", Path(cache)).read_text(encoding="utf-8")
    for s in SAMPLES:
        if s.licence not in fetchers:
            raise ValueError(f"licence line of {s.name} not found in _fetchers.py: {s.licence!r}")
    written = []
    for s in SAMPLES:
        png = fetch_pypi_member(PACKAGE, VERSION, f"skimage/data/{s.name}.png", s.sha256,
                                raw / f"{s.name}.png", Path(cache))
        dst = out_dir / f"{s.name}.jpg"
        with Image.open(png) as im:
            im.convert("RGB").save(dst, "JPEG", quality=JPEG_QUALITY, optimize=True)
        written.append(dst)
    (out_dir / "LICENSES.md").write_text(licenses_md(), encoding="utf-8")
    return written


def licenses_md() -> str:
    lines = [
        "# Sample photos",
        "",
        f"Copied from the PyPI wheel `{PACKAGE}=={VERSION}` (`skimage/data/<name>.png`) and",
        f"re-encoded as JPEG quality {JPEG_QUALITY} by `cutout.toolchain.samples.make_samples`.",
        "Each licence line is quoted verbatim from the docstring of the matching",
        "function in `skimage/data/_fetchers.py`.",
        "",
        "| file | subject | source PNG sha256 | licence (quoted) |",
        "|---|---|---|---|",
    ]
    for s in SAMPLES:
        lines.append(f"| `{s.name}.jpg` | {s.subject} | `{s.sha256[:16]}…` | \"{s.licence}\" |")
    return "\n".join(lines) + "\n"
