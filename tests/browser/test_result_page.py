"""The result view: before/after, background colour, copy."""

from __future__ import annotations

import io
import time

import numpy as np
from PIL import Image


def open_result(browser, src):
    job = browser.start_job(src)
    driver = browser.driver
    driver.switch_to.new_window("tab")
    driver.get(job["url"])
    deadline = time.monotonic() + 120
    while driver.execute_script("return document.body.dataset.state") != "done":
        assert time.monotonic() < deadline, "job did not finish"
        time.sleep(0.1)
    return driver


from cutout.headless.chromium import download_bytes  # noqa: E402  (re-exported for test_refine)


def test_background_colour_compare_and_copy(browser, image_server):
    driver = open_result(browser, image_server.url("coffee.jpg"))
    try:
        transparent = np.asarray(Image.open(io.BytesIO(download_bytes(driver))))
        clear = transparent[..., 3] == 0
        assert clear.any()

        before = driver.find_element("id", "download").get_attribute("href")
        driver.find_element("css selector", "input[name=background][value='#ffffff']").click()
        deadline = time.monotonic() + 10
        while driver.find_element("id", "download").get_attribute("href") == before:
            assert time.monotonic() < deadline, driver.execute_script(
                "return document.querySelector('input[name=background]:checked').value")
            time.sleep(0.1)
        white = np.asarray(Image.open(io.BytesIO(download_bytes(driver))).convert("RGBA"))
        assert white.shape == transparent.shape
        assert (white[..., 3] == 255).all()
        assert (white[clear][:, :3] == 255).all()
        opaque = transparent[..., 3] == 255
        assert np.abs(white[opaque][:, :3].astype(int) - transparent[opaque][:, :3]).max() <= 1

        compare = driver.find_element("id", "compare")
        cutout_src = driver.find_element("id", "cutout").get_attribute("src")
        compare.click()
        assert compare.get_attribute("aria-pressed") == "true"
        assert driver.find_element("id", "cutout").get_attribute("src") != cutout_src
        compare.click()
        assert driver.find_element("id", "cutout").get_attribute("src") == cutout_src

        browser.cdp("Browser.grantPermissions", {
            "origin": browser.url("").rstrip("/"),
            "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
        driver.find_element("id", "copy").click()
        deadline = time.monotonic() + 10
        while not driver.find_element("id", "action-status").text and time.monotonic() < deadline:
            time.sleep(0.1)
        assert driver.find_element("id", "action-status").text == "Copied to the clipboard."
        pasted = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "navigator.clipboard.read().then(async (items) => {"
            "  const blob = await items[0].getType('image/png');"
            "  done(Array.from(new Uint8Array(await blob.arrayBuffer())));"
            "}).catch((e) => done(String(e)));")
        assert isinstance(pasted, list), pasted
        copied = np.asarray(Image.open(io.BytesIO(bytes(pasted))).convert("RGBA"))
        assert copied.shape == white.shape and (copied[..., 3] == 255).all()
    finally:
        driver.close()
        driver.switch_to.window(browser.home)


def test_redo_in_another_mode(browser, image_server):
    driver = open_result(browser, image_server.url("chelsea.jpg"))
    try:
        first = driver.current_url
        from selenium.webdriver.support.ui import Select

        Select(driver.find_element("id", "redo-mode")).select_by_value("portrait")
        deadline = time.monotonic() + 120
        while driver.current_url == first or \
                driver.execute_script("return document.body.dataset.state") != "done":
            assert time.monotonic() < deadline, "the redo did not finish"
            time.sleep(0.1)
        import json

        result = json.loads(driver.execute_script("return document.body.dataset.result"))
        assert result["mode"] == "portrait" and result["model"] == "modnet"
    finally:
        driver.close()
        driver.switch_to.window(browser.home)
