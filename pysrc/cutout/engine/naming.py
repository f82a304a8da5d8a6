"""Download names for results: `<stem>-cutout.png`."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

_UNSAFE = re.compile(r"[^\w.\- ]+", re.UNICODE)
_MAX_STEM = 80


def stem_from_src(src: str) -> str:
    """A readable file stem for the image at `src`; "image" when it has none."""
    scheme = src.split(":", 1)[0].lower()
    if scheme in ("data", "blob"):
        return "image"
    path = unquote(urlsplit(src).path)
    last = path.rstrip("/").rsplit("/", 1)[-1]
    stem = last.rsplit(".", 1)[0] if "." in last else last
    stem = _UNSAFE.sub("_", stem).strip(" ._")
    return stem[:_MAX_STEM] or "image"


def cutout_filename(src: str) -> str:
    return f"{stem_from_src(src)}-cutout.png"


def unique_name(name: str, taken: set[str]) -> str:
    """`name`, or `<stem>-2.png`, `-3`… when an earlier entry of `taken` has it (case
    blind, as on Windows and macOS disks); the result is added to `taken`."""
    stem, dot, ext = name.rpartition(".")
    stem, ext = (stem, dot + ext) if dot else (name, "")
    candidate, n = name, 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{stem}-{n}{ext}"
    taken.add(candidate.lower())
    return candidate
