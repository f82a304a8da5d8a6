"""Images opened from disk (file picker) and pasted go through the same engine."""

from __future__ import annotations

import json
import time


def wait_state(driver, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = driver.execute_script("return document.body.dataset.state")
        if state in ("done", "failed"):
            return state
        time.sleep(0.1)
    raise TimeoutError(state)


def open_upload_view(browser, image_server):
    """The result view's own file picker, as a person gets there: a finished result,
    then its "Open another image" button (in a tab of the driver's)."""
    job = browser.start_job(image_server.url("chelsea.jpg"), "fast")
    driver = browser.driver
    driver.switch_to.new_window("tab")
    driver.get(job["url"])
    assert wait_state(driver) == "done"
    driver.find_element("id", "another").click()
    deadline = time.monotonic() + 10
    while driver.execute_script("return document.body.dataset.state") != "open":
        assert time.monotonic() < deadline, "Open another image did not show the picker"
        time.sleep(0.05)
    return driver


def test_file_picker_upload(browser, image_server, png_alpha, fused_model):
    from cutout.native.pipeline import load_rgba, predict_alpha

    driver = open_upload_view(browser, image_server)
    try:
        driver.find_element("id", "file").send_keys(str(image_server.folder / "coffee.jpg"))
        assert wait_state(driver) == "done", driver.find_element("id", "error").text
        assert driver.find_element("id", "download").get_attribute("download") == "coffee-cutout.png"
        # Reloading re-runs the job from the stored upload: nothing is lost.
        driver.refresh()
        assert wait_state(driver) == "done"
        from cutout.headless.chromium import download_bytes

        alpha = png_alpha(download_bytes(driver))
        native = predict_alpha(fused_model, load_rgba(image_server.folder / "coffee.jpg"))
        assert alpha.shape == native.shape
        assert abs(alpha.astype(int) - native.astype(int)).mean() / 255 <= 0.01
    finally:
        driver.close()
        driver.switch_to.window(browser.home)


def test_paste_upload(browser, image_server):
    driver = open_upload_view(browser, image_server)
    try:
        # A synthetic paste event carrying a PNG file, as the clipboard delivers it.
        driver.execute_async_script(
            """const done = arguments[arguments.length - 1];
            fetch(arguments[0]).then((r) => r.blob()).then((blob) => {
              const transfer = new DataTransfer();
              transfer.items.add(new File([blob], 'pasted.png', {type: 'image/png'}));
              document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: transfer}));
              done();
            });""", image_server.url("pixel.png"))
        assert wait_state(driver) == "done", driver.find_element("id", "error").text
        assert driver.find_element("id", "download").get_attribute("download") == "pasted-cutout.png"
    finally:
        driver.close()
        driver.switch_to.window(browser.home)


def test_popup_file_opens_a_result_tab(browser, image_server):
    """The popup stores the file and the worker opens the result tab itself."""
    driver = browser.driver
    driver.switch_to.new_window("tab")
    before = {u for u in browser.page_targets() if "result.html?job=" in u}
    manifest = json.loads((browser.extension_dir / "manifest.json").read_text())
    driver.get(browser.url(manifest["action"]["default_popup"]))
    popup = driver.current_window_handle
    driver.find_element("id", "file").send_keys(str(image_server.folder / "chelsea.jpg"))
    driver.switch_to.window(browser.home)
    deadline = time.monotonic() + 20
    opened: set[str] = set()
    while not opened and time.monotonic() < deadline:
        opened = {u for u in browser.page_targets() if "result.html?job=" in u} - before
        time.sleep(0.1)
    assert opened, "the popup did not open a result tab"
    browser.close_pages(opened)
    # The popup closes itself once the job is handed over.
    deadline = time.monotonic() + 10
    while popup in driver.window_handles:  # it closes itself once the job is handed over
        assert time.monotonic() < deadline, "the popup stayed open"
        time.sleep(0.1)
