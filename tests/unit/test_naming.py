"""Download names: pure Python, importable without Pyodide."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

# engine/__init__ may import `js`; load the module on its own.
_spec = importlib.util.spec_from_file_location(
    "naming", Path(__file__).resolve().parents[2] / "pysrc/cutout/engine/naming.py")
naming = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(naming)


@pytest.mark.parametrize(("src", "name"), [
    ("https://example.org/photos/Cat%20on%20a%20mat.JPG?x=1", "Cat on a mat-cutout.png"),
    ("upload:abc/holiday.png", "holiday-cutout.png"),
    ("data:image/png;base64,AAAA", "image-cutout.png"),
    ("https://example.org/", "image-cutout.png"),  # no file name: a neutral one
])
def test_cutout_filename(src, name):
    assert naming.cutout_filename(src) == name


def test_unique_names_in_one_archive():
    taken: set[str] = set()
    got = [naming.unique_name(n, taken) for n in
           ("a-cutout.png", "a-cutout.png", "A-CUTOUT.png", "b.png", "a-cutout.png", "noext")]
    assert got == ["a-cutout.png", "a-cutout-2.png", "A-CUTOUT-3.png", "b.png",
                   "a-cutout-4.png", "noext"]
    assert naming.unique_name("noext", taken) == "noext-2"
