"""Models that are not bundled: downloaded from the model host in ranges,
resumed after a cut, verified by sha256, kept in Cache Storage."""

from __future__ import annotations

import json

import pytest

from cutout.modes import MODEL_CHUNK_BYTES as CHUNK
from cutout.modes import get_mode

FAST = get_mode("fast").model_on("wasm")  # what Fast downloads and runs here (no GPU)
PORTRAIT = get_mode("portrait").model_on("wasm")


@pytest.fixture(scope="module")
def download_build(tmp_path_factory):
    """The extension built with nothing bundled: even the fast model is downloaded."""
    from cutout.toolchain.build import build_extension

    out = tmp_path_factory.mktemp("ext") / "extension"
    build_extension(out, bundle=set())
    manifest = json.loads((out / "models" / "manifest.json").read_text())
    assert not (out / "models" / f"{FAST}.onnx").exists()
    return out, {m["id"]: m for m in manifest["models"]}


def host_server(root, **faults):
    from cutout.headless.servers import ModelHostHandler, StaticServer

    handler = type("Host", (ModelHostHandler,), {k: dict(v) for k, v in faults.items()})
    return StaticServer(root, handler)


def test_cut_download_resumes_and_is_cached(download_build, image_server):
    from cutout.headless.chromium import ExtensionBrowser
    from cutout.toolchain.build import MODELS_DIR

    extension, models = download_build
    size = models[PORTRAIT]["bytes"]
    assert size > CHUNK, "the test needs a model of more than one chunk"
    cut = CHUNK + 100_000  # inside the second range request
    path = f"/{PORTRAIT}.onnx"
    with host_server(MODELS_DIR, cut_at={path: cut}) as host, \
            ExtensionBrowser(extension) as browser:
        browser.set_settings(modelHost=host.url())
        first = browser.remove(image_server.url("coffee.jpg"), "portrait", timeout=120)
        assert first.state == "failed"
        assert "interrupted" in first.error and "resumes" in first.error, first.error

        second = browser.remove(image_server.url("coffee.jpg"), "portrait", timeout=120)
        assert second.state == "done", second.error
        ranges = [r for p, r in host.ranges if p == path]
        # First job: range 0 then the cut range 1; second job: only range 1 again.
        assert ranges == [f"bytes=0-{CHUNK - 1}", f"bytes={CHUNK}-{size - 1}",
                          f"bytes={CHUNK}-{size - 1}"], ranges

        keys = browser.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "caches.open('cutout-models-v1').then((c) => c.keys())"
            ".then((rs) => done(rs.map((r) => r.url)));")
        assert keys == [f"https://models.invalid/{models[PORTRAIT]['sha256']}{path}"], keys


def test_tampered_model_is_rejected(download_build, image_server):
    from cutout.headless.chromium import ExtensionBrowser
    from cutout.toolchain.build import MODELS_DIR

    extension, models = download_build
    original = (MODELS_DIR / f"{FAST}.onnx").read_bytes()
    tampered = bytearray(original)
    tampered[len(tampered) // 2] ^= 0xFF
    with host_server(MODELS_DIR, replace={f"/{FAST}.onnx": bytes(tampered)}) as host, \
            ExtensionBrowser(extension) as browser:
        browser.set_settings(modelHost=host.url())
        outcome = browser.remove(image_server.url("coffee.jpg"), timeout=120)
        assert outcome.state == "failed"
        assert "integrity check" in outcome.error, outcome.error


def test_missing_model_host_is_explained(download_build, image_server):
    from cutout.headless.chromium import ExtensionBrowser

    extension, _ = download_build
    with ExtensionBrowser(extension) as browser:
        browser.set_settings(modelHost="")
        outcome = browser.remove(image_server.url("coffee.jpg"), timeout=120)
        assert outcome.state == "failed"
        assert "no model host" in outcome.error, outcome.error


def popup_status(browser, mode: str) -> str:
    """The toolbar popup (as the manifest declares it) with `mode` chosen: its status line."""
    import time

    from selenium.webdriver.support.ui import Select

    manifest = json.loads((browser.extension_dir / "manifest.json").read_text())
    driver = browser.driver
    driver.switch_to.new_window("tab")
    try:
        driver.get(browser.url(manifest["action"]["default_popup"]))
        deadline = time.monotonic() + 60
        while "Asking the engine" in (text := driver.find_element("id", "status").text):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        Select(driver.find_element("id", "mode")).select_by_value(mode)
        return driver.find_element("id", "status").text
    finally:
        driver.close()
        driver.switch_to.window(browser.home)


def test_popup_shows_the_device_and_model_download_state(download_build, image_server):
    """Before its first job the popup says the mode's model downloads once (and how
    big); after it, that it is downloaded; and where the mode runs."""
    from cutout.headless.chromium import ExtensionBrowser
    from cutout.toolchain.build import MODELS_DIR

    extension, models = download_build
    with host_server(MODELS_DIR) as host, ExtensionBrowser(extension) as browser:
        browser.set_settings(modelHost=host.url())
        mb = round(models[FAST]["bytes"] / 1e6)
        before = popup_status(browser, "fast")
        assert before.startswith("Runs on the CPU (WebAssembly, ") and "threads" in before
        assert f"model {FAST} downloads once on first use ({mb} MB)" in before, before
        assert browser.remove(image_server.url("coffee.jpg"), "fast", timeout=120).state == "done"
        assert f"model {FAST} downloaded ({mb} MB)" in popup_status(browser, "fast")


def test_popup_says_bundled_models_are_built_in(browser):
    from cutout.modes import DEFAULT_MODE

    try:
        assert "model isnet-wasm built in" in popup_status(browser, "balanced")
    finally:  # choosing in the popup is kept: the shared browser's later jobs want the default
        browser.set_settings(mode=DEFAULT_MODE)


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """A 64 MB tmpfs for the browser profile (root only: skipped elsewhere)."""
    import subprocess
    import tempfile

    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small disk here (needs root)")
    monkeypatch.setattr(tempfile, "tempdir", str(mount))
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_storage_runs_the_job_from_memory(download_build, image_server, small_disk):
    """No room left on the disk to store a downloaded model (the profile on a small
    disk, filled up to 2 MB): the job still runs, from memory, and says so; nothing
    partial of the model is kept."""
    import os
    import shutil

    from cutout.headless.chromium import ExtensionBrowser
    from cutout.toolchain.build import MODELS_DIR

    extension, models = download_build
    with host_server(MODELS_DIR) as host, ExtensionBrowser(extension) as browser:
        browser.set_settings(modelHost=host.url())
        free = shutil.disk_usage(small_disk).free
        with open(small_disk / "filler", "wb") as filler:
            filler.truncate(0)
            filler.write(b"\0" * max(0, free - (2 << 20)))
            os.fsync(filler.fileno())
        outcome = browser.remove(image_server.url("coffee.jpg"), "fast", timeout=120)
        assert outcome.state == "done", outcome.error
        notes = " ".join(outcome.result["notes"])
        assert f"no room left to store the {FAST} model" in notes, notes
        assert (outcome.result["width"], outcome.result["height"]) == (600, 400)
        keys = browser.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "caches.open('cutout-models-v1').then((c) => c.keys())"
            ".then((rs) => done(rs.map((r) => r.url)));")
        assert keys == [], keys  # no part of it was kept


def test_a_stored_model_is_loaded_again_while_the_engine_boots(download_build, image_server):
    """A downloaded model's hint names its Cache Storage entry: the next start of the
    engine loads it from there while Pyodide boots, not from the model host, and the
    job takes that session."""
    from cutout.bench import restarted_engine
    from cutout.headless.chromium import ExtensionBrowser
    from cutout.toolchain.build import MODELS_DIR

    extension, _ = download_build
    with host_server(MODELS_DIR) as host, ExtensionBrowser(extension) as browser:
        browser.set_settings(modelHost=host.url())
        first = browser.remove(image_server.url("coffee.jpg"), "portrait", timeout=120)
        assert first.state == "done", first.error
        downloaded = list(host.ranges)
        assert downloaded
        again = restarted_engine(browser, image_server.url("coffee.jpg"), "portrait", "wasm")
        timings = again.result["timings_ms"]
        assert timings["boot_warmModelTaken"] >= timings["boot_warmModel"] > 0
        assert host.ranges == downloaded  # nothing asked of the model host again
