"""Several images at once, as a person gives them: picked together in the toolbar
popup (opened from the built manifest), then more dropped on the batch view; the
engine works through them one at a time, a bad file fails alone with its message,
Try again re-runs it, and Download all gives one ZIP of the right PNGs."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from cutout.headless.chromium import download_bytes
from test_result_page import wait_for_file  # tests/browser is on sys.path


def wait_for(driver, script: str, what: str, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while not (value := driver.execute_script(script)):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return value


def rows(driver) -> list[dict]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#items .item')].map((li) => ({"
        " state: li.dataset.state, name: li.querySelector('.name').textContent,"
        " status: li.querySelector('.status').textContent,"
        " retry: !li.querySelector('.retry').hidden,"
        " thumb: li.querySelector('img').naturalWidth}))")


def open_batch_from_popup(browser, paths) -> str:
    """Pick `paths` in the popup's file input; returns the batch view's URL it opened."""
    manifest = json.loads((browser.extension_dir / "manifest.json").read_text())
    driver = browser.driver
    before = set(browser.page_targets())
    driver.switch_to.new_window("tab")
    driver.get(browser.url(manifest["action"]["default_popup"]))
    driver.find_element("id", "file").send_keys("\n".join(str(p) for p in paths))
    driver.switch_to.window(browser.home)
    deadline = time.monotonic() + 30
    opened: set[str] = set()
    while not opened:
        assert time.monotonic() < deadline, "the popup did not open the batch view"
        opened = {u for u in browser.page_targets() if "/batch.html?jobs=" in u} - before
        time.sleep(0.1)
    # chromedriver cannot drive a tab the extension opened: show the same page in one of ours.
    browser.close_pages(opened)
    return opened.pop()


def test_a_batch_from_the_popup_to_one_zip(browser, image_server, tmp_path):
    folder = image_server.folder
    url = open_batch_from_popup(browser, [folder / "chelsea.jpg", folder / "corrupt.jpg",
                                          folder / "coffee.jpg"])
    driver = browser.driver
    driver.switch_to.new_window("tab")
    try:
        driver.get(url)
        wait_for(driver, "return document.body.dataset.state === 'finished'", "the batch to finish")
        items = rows(driver)
        assert [r["name"] for r in items] == ["chelsea.jpg", "corrupt.jpg", "coffee.jpg"]
        assert [r["state"] for r in items] == ["done", "failed", "done"], items
        assert "could not be decoded" in items[1]["status"] and items[1]["retry"]
        # Each done row says which model ran where, in words, and how long it took.
        for done in (items[0], items[2]):
            assert re.fullmatch(r"\d+ × \d+ · [\w-]+ on the CPU \(WebAssembly, \d threads?\) · \d+\.\d s",
                                done["status"]), done["status"]
        assert items[0]["thumb"] > 0 and items[2]["thumb"] > 0  # thumbnails decoded
        assert "2 done, 1 failed" in driver.find_element("id", "summary").text

        # Try again re-runs the bad file: it fails again, alone, with the same message.
        driver.execute_script("document.querySelectorAll('#items .retry')[0].click()")
        wait_for(driver, "return document.body.dataset.state === 'finished'", "the retry")
        assert [r["state"] for r in rows(driver)] == ["done", "failed", "done"]

        # More images dropped on this view join the list.
        driver.execute_async_script(
            """const done = arguments[arguments.length - 1];
            Promise.all(arguments[0].map((u) => fetch(u).then((r) => r.blob()))).then((blobs) => {
              const transfer = new DataTransfer();
              transfer.items.add(new File([blobs[0]], 'astronaut.jpg', {type: 'image/jpeg'}));
              document.getElementById('dropzone').dispatchEvent(
                new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
              done();
            });""", [image_server.url("astronaut.jpg")])
        wait_for(driver, "return document.querySelectorAll('#items .item').length === 4 && "
                         "document.body.dataset.state === 'finished'", "the dropped image")
        assert rows(driver)[3]["state"] == "done"
        # And pasted ones (two at once; one named like an earlier file).
        driver.execute_async_script(
            """const done = arguments[arguments.length - 1];
            Promise.all(arguments[0].map((u) => fetch(u).then((r) => r.blob()))).then((blobs) => {
              const transfer = new DataTransfer();
              transfer.items.add(new File([blobs[0]], 'pixel.png', {type: 'image/png'}));
              transfer.items.add(new File([blobs[1]], 'chelsea.jpg', {type: 'image/jpeg'}));
              document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: transfer}));
              done();
            });""", [image_server.url("pixel.png"), image_server.url("chelsea.jpg")])
        wait_for(driver, "return document.querySelectorAll('#items .item').length === 6 && "
                         "document.body.dataset.state === 'finished'", "the pasted images")
        assert [r["state"] for r in rows(driver)] == ["done", "failed", "done", "done", "done", "done"]
        # ... all in the address, so that a reload keeps them.
        jobs = parse_qs(urlsplit(driver.current_url).query)["jobs"][0].split(",")
        assert len(jobs) == 6 and len(set(jobs)) == 6

        browser.cdp("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
        driver.find_element("id", "download-all").click()
        wait_for(driver, "return !!document.getElementById('zip').getAttribute('href')", "the ZIP")
        saved = wait_for_file(tmp_path / "cutouts.zip")  # written by the browser's downloads
        assert saved == download_bytes(driver, "zip")
        archive = zipfile.ZipFile(io.BytesIO(saved))
        sources = {"chelsea-cutout.png": "chelsea.jpg", "coffee-cutout.png": "coffee.jpg",
                   "astronaut-cutout.png": "astronaut.jpg", "pixel-cutout.png": "pixel.png",
                   "chelsea-cutout-2.png": "chelsea.jpg"}
        assert archive.namelist() == list(sources)
        for info in archive.infolist():
            assert info.compress_type == zipfile.ZIP_STORED  # PNGs are compressed already
        for name, source in sources.items():
            with Image.open(io.BytesIO(archive.read(name))) as png, Image.open(folder / source) as src:
                assert png.format == "PNG" and png.mode == "RGBA" and png.size == src.size
    finally:
        browser.cdp("Browser.setDownloadBehavior", {"behavior": "default"})
        driver.close()
        driver.switch_to.window(browser.home)
