"""The `cutout` command as a person runs it: the console script pip installs, real
files (a folder, a corrupt file, a missing one), the real extension engine."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def cutout(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("cutout")
    assert exe, "the `cutout` console script is not installed (pip install -e '.[dev]')"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout)


def test_help_explains_itself():
    top = cutout("--help")
    assert top.returncode == 0 and "remove" in top.stdout and "nothing is uploaded" in top.stdout
    sub = cutout("remove", "--help")
    assert sub.returncode == 0
    for word in ("--out", "--mode", "--backend", "balanced", "webgpu", "folders"):
        assert word in sub.stdout


def test_remove_a_folder_and_files_names_each_failure(extension_dir, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("chelsea.jpg", "coffee.jpg"):
        shutil.copy(ROOT / "samples" / name, photos / name)
    (photos / "notes.txt").write_text("not an image, and not picked up from a folder")
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    out = tmp_path / "out"

    run = cutout("remove", str(photos), str(bad), str(tmp_path / "missing.png"), "-o", str(out),
                 "--mode", "fast", "--extension", str(extension_dir))

    assert run.returncode == 1, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert any("1/4 chelsea.jpg: done" in line for line in lines), run.stdout
    assert any("4/4 missing.png: FAILED" in line for line in lines), run.stdout
    assert "2 of 4 done" in run.stdout
    assert "broken.jpg" in run.stderr and "missing.png: no such file" in run.stderr
    for name in ("chelsea", "coffee"):
        with Image.open(out / f"{name}.png") as im, Image.open(photos / f"{name}.jpg") as src:
            assert im.mode == "RGBA" and im.size == src.size
    assert not (out / "broken.png").exists()
    timings = json.loads((out / "timings.json").read_text())
    assert [t["ok"] for t in timings] == [True, True, False, False]
    assert all(t["backend"].startswith("wasm") for t in timings[:2])


def test_without_a_built_extension_it_says_what_to_do(tmp_path):
    run = cutout("remove", str(ROOT / "samples" / "chelsea.jpg"), "--extension", str(tmp_path))
    assert run.returncode == 2 and "invoke build" in run.stderr
