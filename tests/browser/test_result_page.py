"""The result view: before/after, zoom and pan, background colour or image, copy."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import time

import numpy as np
import pytest
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


def pinch(driver, cx: float, cy: float, spreads: range) -> None:
    """Two fingers through CDP's real touch input: one lands at (cx - 20, cy), a second
    at (cx + 20, cy), they move apart to +-each of `spreads` px, then both lift."""
    def touch(kind: str, points: list[tuple[float, float]]) -> None:
        driver.execute_cdp_cmd("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [
            {"x": x, "y": y, "id": i} for i, (x, y) in enumerate(points)]})

    touch("touchStart", [(cx - 20, cy)])
    touch("touchStart", [(cx - 20, cy), (cx + 20, cy)])
    for spread in spreads:
        touch("touchMove", [(cx - spread, cy), (cx + spread, cy)])
    touch("touchEnd", [])


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


def assert_summary(driver, result: dict) -> None:
    """Which mode ran, on which device, and how long it took: said in words beside the
    image, inside the first screenful, not only in the details below it."""
    from cutout.modes import mode_labels

    threads = re.fullmatch(r"wasm \((\d+) threads?\)", result["backend"])
    assert threads, result["backend"]
    device = f"the CPU (WebAssembly, {threads[1]} thread{'s' if threads[1] != '1' else ''})"
    expected = f"{mode_labels()[result['mode']]} on {device}, {result['timings_ms']['total'] / 1000:.2f} s"
    box = driver.execute_script(
        "const r = document.getElementById('summary').getBoundingClientRect();"
        "return {text: document.getElementById('summary').textContent, top: r.top,"
        "        bottom: r.bottom, width: r.width, view: window.innerHeight};")
    assert box["text"] == expected
    assert box["width"] > 0 and 0 <= box["top"] and box["bottom"] <= box["view"], box


def test_redo_in_another_mode(browser, image_server):
    driver = open_result(browser, image_server.url("chelsea.jpg"))
    try:
        first = driver.current_url
        assert_summary(driver, json.loads(driver.execute_script("return document.body.dataset.result")))
        from selenium.webdriver.support.ui import Select

        Select(driver.find_element("id", "redo-mode")).select_by_value("portrait")
        deadline = time.monotonic() + 120
        while driver.current_url == first or \
                driver.execute_script("return document.body.dataset.state") != "done":
            assert time.monotonic() < deadline, "the redo did not finish"
            time.sleep(0.1)
        result = json.loads(driver.execute_script("return document.body.dataset.result"))
        assert result["mode"] == "portrait" and result["model"] == "modnet"
        assert_summary(driver, result)
    finally:
        driver.close()
        driver.switch_to.window(browser.home)


def image_box(driver) -> dict:
    return driver.execute_script(
        "const img = document.getElementById('cutout'); const v = document.getElementById('viewport');"
        "return {w: img.getBoundingClientRect().width, natural: img.naturalWidth,"
        "        left: v.scrollLeft, top: v.scrollTop, viewW: v.clientWidth,"
        "        level: document.getElementById('zoom-level').textContent};")


def test_zoom_pan_and_before_after(browser, image_server):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    driver = open_result(browser, image_server.url("astronaut.jpg"))
    try:
        fit = image_box(driver)
        assert fit["level"] == "Fit" and fit["w"] <= fit["viewW"] + 1
        driver.find_element("id", "zoom-100").click()
        at100 = image_box(driver)
        assert abs(at100["w"] - at100["natural"]) <= 1 and at100["level"] == "100 %"
        # Keyboard: + twice is 400 %, larger than the window: it scrolls.
        ActionChains(driver).send_keys("+").send_keys("+").perform()
        big = image_box(driver)
        assert abs(big["w"] - 4 * big["natural"]) <= 1 and big["level"] == "400 %"
        assert big["w"] > big["viewW"]
        # Drag to pan.
        viewport = driver.find_element("id", "viewport")
        ActionChains(driver).move_to_element(viewport).click_and_hold().move_by_offset(-200, -150) \
            .release().perform()
        panned = image_box(driver)
        assert panned["left"] >= big["left"] + 150 and panned["top"] >= big["top"] + 100, (big, panned)
        ActionChains(driver).send_keys("0").perform()
        assert image_box(driver)["level"] == "Fit"
        driver.find_element("id", "zoom-in").click()
        assert image_box(driver)["level"].endswith("%")
        driver.find_element("id", "zoom-fit").click()
        # Two fingers spread from 40 to 120 px apart: 3x the fit, about their midpoint.
        rect = driver.execute_script("return document.getElementById('cutout').getBoundingClientRect().toJSON();")
        cx, cy = rect["left"] + rect["width"] / 3, rect["top"] + rect["height"] / 2
        pinch(driver, cx, cy, range(30, 70, 10))
        pinched = driver.execute_script("return document.getElementById('cutout').getBoundingClientRect().toJSON();")
        assert abs(pinched["width"] - 3 * rect["width"]) <= 2, (rect, pinched)
        assert abs((cx - pinched["left"]) / pinched["width"] - 1 / 3) < 0.01, (rect, pinched)
        driver.find_element("id", "zoom-fit").click()

        # Before / after: the original shows over the cut-out up to the slider.
        assert not driver.find_element("id", "before").is_displayed()
        slider = driver.find_element("id", "split")
        slider.click()  # the middle of the track
        slider.send_keys(Keys.END)  # to the right end: all original
        state = driver.execute_script(
            "const b = document.getElementById('before');"
            "return {hidden: b.hidden, clip: b.style.clipPath, src: b.src,"
            "        original: document.getElementById('cutout').dataset.original};")
        assert not state["hidden"] and state["src"] == state["original"] != ""
        assert state["clip"].replace(" ", "") in ("inset(00%00)", "inset(0%00px0px)", "inset(0px0%0px0px)"), state
    finally:
        driver.close()
        driver.switch_to.window(browser.home)


def test_own_background_image_reaches_the_download(browser, image_server, tmp_path):
    from cutout.headless.chromium import download_bytes

    backdrop = tmp_path / "backdrop.png"
    Image.new("RGB", (40, 30), (20, 200, 60)).save(backdrop)
    driver = open_result(browser, image_server.url("coffee.jpg"))
    try:
        transparent = np.asarray(Image.open(io.BytesIO(download_bytes(driver))))
        before = driver.find_element("id", "download").get_attribute("href")
        driver.find_element("id", "background-image").send_keys(str(backdrop))
        deadline = time.monotonic() + 20
        while driver.find_element("id", "download").get_attribute("href") == before:
            assert time.monotonic() < deadline, driver.find_element("id", "action-status").text
            time.sleep(0.1)
        assert driver.execute_script(
            "return document.querySelector('input[name=background][value=image]').checked")
        out = np.asarray(Image.open(io.BytesIO(download_bytes(driver))).convert("RGBA"))
        assert out.shape == transparent.shape and (out[..., 3] == 255).all()
        clear = transparent[..., 3] == 0
        assert clear.sum() > 1000
        # Where the cut-out is clear, the background image (scaled to cover) shows.
        assert np.abs(out[..., :3][clear].astype(int) - (20, 200, 60)).max() <= 2
    finally:
        driver.close()
        driver.switch_to.window(browser.home)


def wait_for_file(path, timeout: float = 30) -> bytes:
    """A file Chromium's download manager writes (in full: no .crdownload left)."""
    deadline = time.monotonic() + timeout
    while not path.is_file() or list(path.parent.glob("*.crdownload")):
        assert time.monotonic() < deadline, f"{path.name} was not downloaded: {list(path.parent.iterdir())}"
        time.sleep(0.1)
    return path.read_bytes()


def test_download_png_writes_the_file(browser, image_server, tmp_path):
    """Clicking Download PNG saves <name>-cutout.png through the browser's downloads."""
    browser.cdp("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    driver = open_result(browser, image_server.url("chelsea.jpg"))
    try:
        driver.find_element("id", "download").click()
        data = wait_for_file(tmp_path / "chelsea-cutout.png")
        with Image.open(io.BytesIO(data)) as png, Image.open(image_server.folder / "chelsea.jpg") as src:
            assert png.format == "PNG" and png.mode == "RGBA" and png.size == src.size
    finally:
        browser.cdp("Browser.setDownloadBehavior", {"behavior": "default"})
        driver.close()
        driver.switch_to.window(browser.home)


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node")
def test_the_device_is_named_in_words(extension_dir):
    """The result view and the batch rows name the engine's backend label in words, the
    GPU's adapter included (the WebGPU path, which the CPU-only runs here do not reach)."""
    device_js = extension_dir / "lib" / "device.js"
    labels = ["wasm (2 threads)", "wasm (1 thread)", "webgpu (NVIDIA H200)", "webgpu", "other"]
    script = (f"import {{ backendText }} from {json.dumps(device_js.as_uri())};\n"
              f"console.log(JSON.stringify({json.dumps(labels)}.map(backendText)));")
    done = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        "the CPU (WebAssembly, 2 threads)", "the CPU (WebAssembly, 1 thread)",
        "the GPU (WebGPU, NVIDIA H200)", "the GPU (WebGPU)", "other"]


def test_the_wait_says_how_long_the_model_run_should_take(browser, image_server):
    """Once this device has run a mode, the next job's "Finding the subject…" says how long
    its model run takes here: a person waiting seconds for Balanced on a CPU knows how
    long. Every stage the page shows is recorded from the moment it loads."""
    driver = open_result(browser, image_server.url("coffee.jpg"))  # a run to go by
    driver.close()
    driver.switch_to.window(browser.home)
    job = browser.start_job(image_server.url("chelsea.jpg"))
    driver.switch_to.new_window("tab")
    try:
        driver.get(job["url"])
        driver.execute_script(
            "const stage = document.getElementById('stage'); window.__stages = [stage.textContent];"
            "new MutationObserver(() => window.__stages.push(stage.textContent))"
            "  .observe(stage, {childList: true, characterData: true, subtree: true});")
        deadline = time.monotonic() + 120
        while driver.execute_script("return document.body.dataset.state") != "done":
            assert time.monotonic() < deadline, "job did not finish"
            time.sleep(0.1)
        stages = driver.execute_script("return window.__stages")
        said = [s for s in stages if s.startswith("Finding the subject…")]
        assert said and all(re.fullmatch(r"Finding the subject… about \d+\.\d s on this device", s)
                            for s in said), stages
    finally:
        driver.close()
        driver.switch_to.window(browser.home)
