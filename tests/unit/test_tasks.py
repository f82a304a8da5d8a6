"""tasks.py stays thin: argument handling tested without running anything heavy."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from invoke import MockContext, Result

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tasks():
    spec = importlib.util.spec_from_file_location("cutout_tasks", ROOT / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_collection_has_the_documented_tasks(tasks):
    names = set(tasks.ns.task_names)
    assert {"deps", "models", "build", "demo", "remove", "test", "bench", "clean",
            "serve-models"} <= names


def test_expand_paths_keeps_order_globs_and_missing(tasks, tmp_path, monkeypatch):
    for name in ("b.jpg", "a.jpg", "c.png"):
        (tmp_path / name).write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    paths = tasks.expand_paths("c.png, *.jpg ,missing.jpg")
    assert [p.name for p in paths] == ["c.png", "a.jpg", "b.jpg", "missing.jpg"]
    assert [p.name for p in tasks.expand_paths("nothing-*.gif")] == ["nothing-*.gif"]


def test_test_task_runs_pytest(tasks):
    expected = f"{sys.executable} -m pytest -q -rs -k fuse -m 'not browser'"
    c = MockContext(run={expected: Result("")})
    tasks.test.body(c, k="fuse", browser=False)  # no build, no Chromium: only pytest runs


def test_test_task_builds_first_when_browser_tests_run(tasks, monkeypatch):
    called = []
    for name in ("deps", "models", "build"):
        monkeypatch.setattr(tasks, name, lambda c, name=name: called.append(name))
    expected = f"{sys.executable} -m pytest -q -rs"
    tasks.test.body(MockContext(run={expected: Result("")}), browser=True)
    assert called == ["deps", "models", "build"]


def test_remove_and_build_pass_backend_and_flavour(tasks, monkeypatch, tmp_path):
    import cutout.cli as cli
    import cutout.toolchain.build as build

    seen = {}
    monkeypatch.setattr(cli, "remove", lambda paths, out, mode, backend: (
        seen.update(mode=mode, backend=backend) or 0))
    tasks.remove.body(MockContext(), "x.jpg", out=str(tmp_path), mode="balanced", backend="webgpu")
    assert seen == {"mode": "balanced", "backend": "webgpu"}

    class Info:
        out, files, bytes = tmp_path, 1, 1

    import cutout.toolchain.snapshot as snapshot

    monkeypatch.setattr(build, "build_extension", lambda model_host, remote: (
        seen.update(host=model_host, remote=remote) or Info()))

    def no_chromium(out):  # what the build prints without a browser to make the snapshot
        seen.update(snapshot_of=out)
        raise RuntimeError("no Chromium")

    monkeypatch.setattr(snapshot, "bundle_snapshot", no_chromium)
    tasks.build.body(MockContext(), model_host="https://models.example/", remote_models=True)
    assert seen["host"] == "https://models.example/" and seen["remote"] is True
    assert seen["snapshot_of"] == tmp_path  # the build goes on without it


def test_default_build_bundles_every_model_and_the_slim_one_only_fast(tmp_path):
    import json

    from cutout.toolchain.build import copy_models

    models = tmp_path / "models"
    models.mkdir()
    manifest = json.loads((ROOT / "models" / "manifest.json").read_text())
    for m in manifest["models"]:
        (models / m["file"]).write_bytes(b"weights")
    for remote, expected in ((False, {m["id"] for m in manifest["models"]}), (True, {"u2netp", "u2netp-wasm"})):
        ext = tmp_path / f"ext-{remote}"
        assert set(copy_models(ext, models, ROOT / "models" / "manifest.json", remote=remote)) == expected
        shipped = {p.name for p in (ext / "models").iterdir()}
        assert {"resize.onnx", "manifest.json", "compose-strip.onnx"} <= shipped
        written = json.loads((ext / "models" / "manifest.json").read_text())
        assert {m["id"] for m in written["models"] if m["bundled"]} == expected
