"""`invoke screenshots`: the extension's pages as a person reaches them, captured from
the real extension in headless Chromium (docs/screenshots/, shown in the README).

Every page is opened through what the built manifest declares (the toolbar popup,
the options page) or through the flow a person follows (a job's result tab, its
Refine button); the cut-out is a real one of a bundled sample photo.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .chromium import ExtensionBrowser
from .servers import StaticServer

SAMPLE = "astronaut.jpg"
# (name, window width, height): the popup at its 360 px width, the others as a laptop.
SIZES = {"popup": (380, 560), "result": (1280, 800), "refine": (1280, 800),
         "batch": (1024, 700), "options": (1024, 900)}
BATCH = ("chelsea.jpg", "coffee.jpg", "astronaut.jpg")


def _wait(driver, script: str, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not driver.execute_script(script):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.1)


def take(extension_dir: Path, samples_dir: Path, out_dir: Path) -> list[Path]:
    """Capture the popup, a result, Refine, a batch and the options page; returns the
    PNG paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((extension_dir / "manifest.json").read_text())
    shots: list[Path] = []
    with StaticServer(samples_dir) as server, ExtensionBrowser(extension_dir) as browser:
        driver = browser.driver

        def shoot(name: str) -> None:
            path = out_dir / f"{name}.png"
            driver.save_screenshot(str(path))
            shots.append(path)

        driver.switch_to.window(browser.home)
        driver.set_window_size(*SIZES["popup"])
        driver.get(browser.url(manifest["action"]["default_popup"]))
        # Once the engine has said which device runs each mode, the labels carry it.
        _wait(driver, "const o = document.getElementById('mode').options;"
                      "return o.length && o[0].textContent.includes(':')", "the popup's modes")
        shoot("popup")

        job = browser.start_job(server.url(SAMPLE), "balanced")
        driver.set_window_size(*SIZES["result"])
        driver.get(job["url"])
        _wait(driver, "return document.body.dataset.state === 'done'", "the cut-out")
        time.sleep(0.5)  # the result image's decode and first paint
        shoot("result")

        driver.set_window_size(*SIZES["refine"])
        driver.find_element("id", "refine").click()
        _wait(driver, "return location.pathname.endsWith('/refine.html') && "
                      "document.body.dataset.state === 'ready'", "the Refine view")
        time.sleep(0.3)
        shoot("refine")

        # The batch view the popup opens for several images (its URL built as the popup
        # builds it: tests/browser/test_batch.py goes through the popup itself).
        jobs = [browser.start_job(server.url(name), "fast")["id"] for name in BATCH]
        driver.set_window_size(*SIZES["batch"])
        driver.get(browser.url(f"pages/batch/batch.html?jobs={','.join(jobs)}"))
        _wait(driver, "return document.body.dataset.state === 'finished'", "the batch")
        time.sleep(0.3)
        shoot("batch")

        driver.set_window_size(*SIZES["options"])
        driver.get(browser.url(manifest["options_page"]))
        _wait(driver, "return !!document.body.dataset.tier", "the options page's device section")
        shoot("options")
    return shots
