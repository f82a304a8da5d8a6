"""Options: default mode, model host (validated), storage, delete downloaded models,
release loaded models from memory."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path


def storage(browser, key):
    return browser.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "chrome.storage.local.get(arguments[0]).then((v) => done(v[arguments[0]] ?? null));", key)


def wait_status(driver, text, timeout=5):
    deadline = time.monotonic() + timeout
    while text not in driver.find_element("id", "status").text:
        assert time.monotonic() < deadline, driver.find_element("id", "status").text
        time.sleep(0.05)


def options_url(browser) -> str:
    """The options page the manifest declares (what the browser's Options entry opens)."""
    manifest = json.loads((browser.extension_dir / "manifest.json").read_text())
    return browser.url(manifest["options_page"])


def inference_threads(browser) -> int:
    """Threads of the extension's renderer that run dedicated workers: the inference
    worker and onnxruntime's WASM threads (Linux /proc; 0 when the worker has ended)."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_text(errors="ignore")
            if browser.profile not in cmdline or "--extension-process" not in cmdline:
                continue
            for task in Path(f"/proc/{pid}/task").iterdir():
                count += (task / "comm").read_text().strip() == "DedicatedWorker"
        except OSError:
            continue
    return count


def wait_threads(browser, check, timeout=15) -> int:
    deadline = time.monotonic() + timeout
    while not check(n := inference_threads(browser)):
        assert time.monotonic() < deadline, f"{n} inference threads"
        time.sleep(0.2)
    return n


def test_release_models_ends_the_inference_worker(browser, image_server):
    """The options page's "Release models from memory" releases every loaded model and
    ends the inference worker (its WASM heap cannot shrink otherwise: the benchmark
    measures the memory given back); the next cut-out starts a new worker and works."""
    assert browser.remove(image_server.url("chelsea.jpg"), "fast").state == "done"
    wait_threads(browser, lambda n: n >= 1)
    driver = browser.driver
    driver.switch_to.new_window("tab")
    try:
        driver.get(options_url(browser))
        driver.find_element("id", "free-memory").click()
        wait_status(driver, "released from memory")
        assert re.search(r"\d+ loaded models? released", driver.find_element("id", "status").text)
        wait_threads(browser, lambda n: n == 0)
        driver.find_element("id", "free-memory").click()  # nothing loaded now: says so
        wait_status(driver, "No model was loaded")
    finally:
        driver.close()
        driver.switch_to.window(browser.home)
    outcome = browser.remove(image_server.url("chelsea.jpg"), "fast")
    assert outcome.state == "done", outcome.error
    assert wait_threads(browser, lambda n: n >= 1) >= 1


def test_options_save_and_validate(browser, model_host):
    from selenium.webdriver.support.ui import Select

    driver = browser.driver
    driver.switch_to.new_window("tab")
    options_tab = driver.current_window_handle
    try:
        driver.get(options_url(browser))
        Select(driver.find_element("id", "mode")).select_by_value("portrait")
        wait_status(driver, "Saved")
        host = driver.find_element("id", "host")
        host.clear()
        host.send_keys("ftp://example.invalid/models/\t")
        wait_status(driver, "must be an http")
        driver.switch_to.window(browser.home)
        assert storage(browser, "mode") == "portrait"
        assert storage(browser, "modelHost") == model_host.url()  # the bad value was not saved

        driver.switch_to.window(options_tab)
        driver.find_element("id", "clear").click()
        wait_status(driver, "deleted")
        keys = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "caches.open('cutout-models-v1').then((c) => c.keys()).then((k) => done(k.length));")
        assert keys == 0
        assert "MB used" in driver.find_element("id", "usage").text
    finally:
        driver.switch_to.window(browser.home)
        browser.set_settings(mode="fast")
        driver.switch_to.window(options_tab)
        driver.close()
        driver.switch_to.window(browser.home)
