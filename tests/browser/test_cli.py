"""The `cutout` command as a person runs it: the console script pip installs, real
files (a folder, a corrupt file, a missing one), the real extension engine."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
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
    for word in ("--out", "--mode", "--backend", "balanced", "quality", "webgpu", "folders"):
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


def test_quality_mode_through_the_command(extension_dir, tmp_path):
    """`cutout remove --mode quality` runs both passes in the extension and says so."""
    from cutout.native.pipeline import load_rgba, predict_alpha
    from cutout.modes import get_mode, pipeline_options
    from cutout.toolchain.build import MODELS_DIR

    src = ROOT / "samples" / "chelsea.jpg"
    run = cutout("remove", str(src), "-o", str(tmp_path), "--mode", "quality",
                 "--extension", str(extension_dir))
    assert run.returncode == 0, run.stdout + run.stderr
    (timing,) = json.loads((tmp_path / "timings.json").read_text())
    assert timing["mode"] == "quality" and timing["model"] == "isnet-wasm", timing
    with Image.open(tmp_path / "chelsea.png") as im:
        ours = np.asarray(im)[..., 3]
    native = predict_alpha(MODELS_DIR / "isnet-wasm.onnx", load_rgba(src),
                           **pipeline_options(get_mode("quality")))
    fa, fb = ours >= 128, native >= 128
    assert (fa & fb).sum() / (fa | fb).sum() >= 0.99


def test_without_a_built_extension_it_says_what_to_do(tmp_path):
    run = cutout("remove", str(ROOT / "samples" / "chelsea.jpg"), "--extension", str(tmp_path))
    assert run.returncode == 2 and "invoke build" in run.stderr
