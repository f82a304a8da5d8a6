"""The engine lives in the offscreen document and outlives the service worker."""

from __future__ import annotations

import json
import time

from test_batch import rows as batch_rows  # tests/browser is on sys.path
from test_batch import wait_for


def worker_running(browser) -> bool:
    return any(t["type"] == "service_worker" and browser.extension_id in t["url"]
               for t in browser.cdp("Target.getTargets")["targetInfos"])


def test_engine_survives_service_worker_stop(browser, image_server):
    first = browser.remove(image_server.url("chelsea.jpg"))
    assert first.state == "done", first.error

    browser.stop_service_worker()
    deadline = time.monotonic() + 10
    while worker_running(browser) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not worker_running(browser), "the worker did not stop"

    # The next "right-click" wakes the worker; the engine is still booted, so
    # the model is not loaded again.
    second = browser.remove(image_server.url("chelsea.jpg"))
    assert second.state == "done", second.error
    assert second.result["timings_ms"]["model_load"] < 50
    assert browser.engine_running()


def test_image_under_overlay_and_css_background(browser, page_server, image_server):
    """The content script finds images the 'image' context menu cannot see."""
    driver = browser.driver
    driver.switch_to.new_window("tab")
    page_tab = driver.current_window_handle
    page = page_server.url("index.html?for=overlay")
    driver.get(page)
    found = {}
    for element_id, expected in (("overlay", "coffee.jpg"), ("bg", "chelsea.jpg")):
        driver.switch_to.window(page_tab)
        browser.right_click(element_id)
        driver.switch_to.window(browser.home)
        found[element_id] = browser.driver.execute_async_script(
            """const [page, done] = [arguments[0], arguments[arguments.length - 1]];
            chrome.tabs.query({}).then(async (tabs) => {
              const tab = tabs.find((t) => t.url === page);
              const reply = await chrome.tabs.sendMessage(tab.id,
                {target: 'content', type: 'clicked-image', data: {}}, {frameId: 0});
              done(reply.src);
            }).catch((e) => done(String(e)));""", page)
        assert found[element_id] == image_server.url(expected), found
    driver.switch_to.window(page_tab)
    driver.close()
    driver.switch_to.window(browser.home)


def test_worker_stopped_mid_job_loses_nothing(browser, image_server):
    """The job runs in the offscreen engine: stopping the worker while it works
    does not stop the job or its delivery to the result page."""
    # Balanced (ISNet, seconds per photo) leaves a wide window to stop the worker in.
    job = browser.start_job(image_server.url("astronaut.jpg"), "balanced")
    driver = browser.driver
    driver.switch_to.new_window("tab")
    driver.get(job["url"])
    deadline = time.monotonic() + 120
    # The engine has the job once it reports a model stage: loading it (when an earlier
    # test has not loaded ISNet yet) or running it; seconds of model work follow.
    while not any(text in driver.find_element("id", "stage").text
                  for text in ("the model", "Finding the subject")):
        state = driver.execute_script("return document.body.dataset.state")
        assert state in ("starting", "working"), driver.find_element("id", "error").text
        assert time.monotonic() < deadline, "the job never reached inference"
        time.sleep(0.02)
    assert worker_running(browser)
    browser.stop_service_worker()
    deadline = time.monotonic() + 10
    while worker_running(browser) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not worker_running(browser), "the worker did not stop"
    assert driver.execute_script("return document.body.dataset.state") == "working", \
        "the job ended before the worker was stopped: the test proved nothing"
    deadline = time.monotonic() + 120
    while driver.execute_script("return document.body.dataset.state") not in ("done", "failed") \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    state = driver.execute_script("return document.body.dataset.state")
    error = driver.find_element("id", "error").text
    driver.close()
    driver.switch_to.window(browser.home)
    assert state == "done", error


def _open_page(browser, page_server, why: str) -> str:
    """page_server's page in a new tab (the driver stays on it); its URL."""
    browser.driver.switch_to.new_window("tab")
    page = page_server.url(f"index.html?for={why}")
    browser.driver.get(page)
    return page


def _close_page(browser) -> None:
    browser.driver.close()
    browser.driver.switch_to.window(browser.home)


def test_the_registered_context_menu_handler_runs_a_job(browser, page_server, image_server):
    """The worker's real contextMenus.onClicked handler, called through CDP on the
    worker with a genuine tab and the info Chrome passes: for an <img> ("Remove
    background") and for an image under an overlay found by the content script."""
    page = _open_page(browser, page_server, "context-menu-handler")
    registered = browser.worker_evaluate(
        "chrome.contextMenus.onClicked.hasListener(self.onContextMenuClicked)")
    assert registered is True
    for menu, element, expected in (("cutout-image", "photo", "astronaut.jpg"),
                                    ("cutout-under-pointer", "overlay", "coffee.jpg")):
        browser.right_click(element)
        outcome = browser.menu_job(page, menu)
        assert outcome.state == "done", outcome.error
        job = browser.worker_evaluate(
            f"chrome.storage.session.get('job:{outcome.result['job']}')"
            ".then((o) => Object.values(o)[0])")
        assert job["src"] == image_server.url(expected)
    _close_page(browser)


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_right_click_on_an_image_starts_the_engine_while_the_menu_is_read(
        browser, page_server, image_server):
    """The engine's start (Pyodide restored, the last model preloaded) begins at the
    right-click, not at the menu choice, and reads nothing of the image."""
    page = _open_page(browser, page_server, "warm-up")
    assert browser.close_engine()
    requests = len(image_server.requests)
    browser.right_click("photo")
    _wait(browser.engine_running, 10, "a right-click on an image did not start the engine")
    time.sleep(2.5)  # a person reading the menu
    assert len(image_server.requests) == requests, "the warm-up fetched something"

    outcome = browser.menu_job(page)
    assert outcome.state == "done", outcome.error
    timings = outcome.result["timings_ms"]
    # ms since the engine's document began loading: it began at the right-click, 2.5 s
    # before the job (a job that starts the engine itself comes ~1 s after its start)
    assert timings["boot_job_start"] > 1800, timings
    _close_page(browser)


def test_no_warm_up_without_an_image_or_from_a_page_made_right_click(browser, page_server):
    """Text gets no warm-up, and neither does a contextmenu event a page's script
    dispatches on an image: only a person's right-click on one starts the engine."""
    _open_page(browser, page_server, "no-warm-up")
    assert browser.close_engine()
    browser.right_click("words")
    browser.driver.execute_script("""
        const photo = document.getElementById('photo');
        photo.scrollIntoView();  // the right-click above scrolled to the text
        const box = photo.getBoundingClientRect();
        photo.dispatchEvent(new MouseEvent('contextmenu', {bubbles: true, cancelable: true,
          clientX: box.x + 10, clientY: box.y + 10, button: 2}));""")
    time.sleep(3)
    assert not browser.engine_running()
    browser.right_click("photo")  # the same page can warm up: the check above means something
    _wait(browser.engine_running, 10, "a right-click on an image did not start the engine")
    _close_page(browser)


def test_an_engine_started_by_a_right_click_closes_unless_used(browser, page_server, image_server):
    """Started by a right-click and asked nothing within unusedEngineMs, the engine's
    document closes (its memory back); one that ran a job stays."""
    browser.set_settings(unusedEngineMs=1500)
    try:
        _open_page(browser, page_server, "unused-engine")
        assert browser.close_engine()
        browser.right_click("photo")
        _wait(browser.engine_running, 10, "a right-click on an image did not start the engine")
        _wait(lambda: not browser.engine_running(), 30, "the unused engine did not close")

        page_tab = browser.driver.current_window_handle
        browser.set_settings(unusedEngineMs=4000)  # longer than a job's way to the engine
        browser.driver.switch_to.window(page_tab)
        browser.right_click("photo")
        _wait(browser.engine_running, 10, "a right-click on an image did not start the engine")
        started = time.monotonic()
        outcome = browser.remove(image_server.url("chelsea.jpg"), "fast")
        assert outcome.state == "done", outcome.error
        time.sleep(max(0.0, started + 6 - time.monotonic()))  # past the 4 s
        assert browser.engine_running(), "an engine that ran a job closed"
        browser.driver.switch_to.window(page_tab)
        _close_page(browser)
    finally:
        _page_script(browser, "await chrome.storage.local.remove('unusedEngineMs'); return 1;")


def test_right_clicks_in_a_row_share_one_batch_view(browser, page_server, image_server):
    """Three right-clicks in a row (the real onClicked handler, a genuine tab): the first
    opens its result tab, the next ones turn that tab into a batch view of all three,
    which the engine works through to three cut-outs; a click after the tab is closed
    opens a result tab of its own again."""
    driver = browser.driver
    driver.switch_to.new_window("tab")
    page = page_server.url("index.html?for=right-clicks-in-a-row")
    driver.get(page)
    names = ["astronaut.jpg", "chelsea.jpg", "coffee.jpg"]
    before = set(browser.page_targets())

    def right_click(name: str) -> None:
        browser.click_menu(page, browser.menu_info(page, image_server.url(name)))

    for name in names:
        right_click(name)
    deadline = time.monotonic() + 10
    while not any("batch.html?jobs=" in u and u.count(",") == 2
                  for u in set(browser.page_targets()) - before):
        assert time.monotonic() < deadline, set(browser.page_targets()) - before
        time.sleep(0.1)
    opened = set(browser.page_targets()) - before
    assert len(opened) == 1, opened  # one tab, not three
    (batch,) = opened
    browser.close_pages(opened)
    driver.get(batch)  # chromedriver cannot drive the tab the extension opened
    wait_for(driver, "return document.body.dataset.state === 'finished'", "the batch", 300)
    states = [[r["name"], r["state"]] for r in batch_rows(driver)]
    assert states == [[n, "done"] for n in names], states

    before = set(browser.page_targets())
    right_click("chelsea.jpg")  # the row's tab is gone: a result tab of its own
    deadline = time.monotonic() + 10
    while not (set(browser.page_targets()) - before):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    (single,) = set(browser.page_targets()) - before
    assert "pages/result/result.html?job=" in single
    browser.close_pages({single})
    driver.close()
    driver.switch_to.window(browser.home)


def test_ten_right_clicks_within_two_seconds_all_finish(browser, page_server, image_server):
    """Ten right-clicks (the registered onClicked handler, a genuine tab) within two
    seconds: all ten are queued in one batch view and all finish, none lost or mixed up
    (memory over many jobs, and back after them, is measured by `invoke bench`)."""
    names = ["astronaut.jpg", "chelsea.jpg", "coffee.jpg"] * 3 + ["chelsea.jpg"]
    driver = browser.driver
    driver.switch_to.new_window("tab")
    page = page_server.url("index.html?for=ten-right-clicks")
    driver.get(page)
    before = set(browser.page_targets())
    elapsed = browser.click_menu(page, *(browser.menu_info(page, image_server.url(name))
                                         for name in names))
    assert elapsed < 2000, f"the ten clicks took {elapsed:.0f} ms"
    deadline = time.monotonic() + 20
    while not any(u.count(",") == 9 for u in set(browser.page_targets()) - before):
        assert time.monotonic() < deadline, [u.count(",") for u in set(browser.page_targets()) - before]
        time.sleep(0.1)
    (batch,) = set(browser.page_targets()) - before
    browser.close_pages({batch})
    driver.get(batch)
    wait_for(driver, "return document.body.dataset.state === 'finished'", "the batch", 600)
    rows = [[r["name"], r["state"], r["status"]] for r in batch_rows(driver)]
    assert [(r[0], r[1]) for r in rows] == [(n, "done") for n in names], rows
    sizes = {"astronaut.jpg": "512 × 512", "chelsea.jpg": "451 × 300", "coffee.jpg": "600 × 400"}
    assert all(r[2].startswith(sizes[r[0]]) for r in rows), rows  # each its own image
    driver.close()
    driver.switch_to.window(browser.home)


def _page_script(browser, script: str, *args):
    browser._ensure_extension_page()
    return browser.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"(async () => {{ {script} }})().then(done, (e) => done('error: ' + e));", *args)


def _snapshot_sizes(browser) -> list[int]:
    """Byte sizes of the entries in the engine's snapshot cache (gzipped)."""
    return _page_script(browser, """
      const cache = await caches.open('cutout-engine-v1');
      return Promise.all((await cache.keys()).map(
        async (k) => (await (await cache.match(k)).arrayBuffer()).byteLength));""")


def _restart_engine(browser, image_server, mode="fast"):
    """The engine's document closed (its next start restores as after a browser restart),
    then a job: its timings."""
    browser.close_engine()
    outcome = browser.remove(image_server.url("chelsea.jpg"), mode)
    assert outcome.state == "done", outcome.error
    return outcome.result["timings_ms"]


def _warm_model_hint(browser) -> dict:
    from cutout.modes import WARM_MODEL_KEY

    return json.loads(_page_script(browser, f"return localStorage.getItem({WARM_MODEL_KEY!r});"))


def test_a_start_loads_the_last_model_while_pyodide_boots(browser, image_server):
    """The engine notes the model it loaded last on WASM; the next start of its document
    loads that model during Pyodide's boot, and a job of that model takes the session.
    A hint whose file does not hash as it says is not loaded; a preload of another model
    than the job's is released, and the job loads its own."""
    from cutout.modes import WARM_MODEL_KEY, get_mode

    _restart_engine(browser, image_server, "portrait")
    hint = _warm_model_hint(browser)
    assert hint["path"] == f"models/{get_mode('portrait').model_on('wasm')}.onnx"
    timings = _restart_engine(browser, image_server, "portrait")
    assert timings["boot_warmModelTaken"] >= timings["boot_warmModel"] > 0

    _restart_engine(browser, image_server, "fast")  # Fast's model is the hint now
    assert _warm_model_hint(browser)["path"] == f"models/{get_mode('fast').model_on('wasm')}.onnx"
    # the build saved it optimised (toolchain/optimize.py): loaded as it is
    options = _warm_model_hint(browser)["options"]
    assert options["graphOptimizationLevel"] == "disabled"
    # onnxruntime's memory pattern would grow the WASM heap on the second run (modes.py)
    assert options["enableMemPattern"] is False and options["enableCpuMemArena"] is False
    _page_script(browser, f"localStorage.setItem({WARM_MODEL_KEY!r}, arguments[0]); return 1;",
                 json.dumps({**_warm_model_hint(browser), "sha256": "0" * 64}))
    timings = _restart_engine(browser, image_server, "fast")
    assert "boot_warmModel" not in timings and "boot_warmModelTaken" not in timings
    assert _warm_model_hint(browser)["sha256"] != "0" * 64  # the job's own load wrote it again

    timings = _restart_engine(browser, image_server, "portrait")  # Fast's preload: not taken
    assert timings["boot_warmModel"] > 0 and "boot_warmModelTaken" not in timings


def _put_stored_snapshot(browser, gzipped: bool, key: str | None = None) -> None:
    """Cache Storage's snapshot (read before the bundled one) replaced by 4 kB of junk,
    or that junk stored under another `key`."""
    from cutout.toolchain.snapshot import SNAPSHOT_KEY

    assert _page_script(browser, """
      const cache = await caches.open('cutout-engine-v1');
      let body = new Blob([new Uint8Array(4096).fill(7)]);
      if (arguments[0]) body = await new Response(
        body.stream().pipeThrough(new CompressionStream('gzip'))).blob();
      await cache.put(arguments[1], new Response(body));
      return 'replaced';""", gzipped, key or SNAPSHOT_KEY) == "replaced"


def test_engine_starts_from_the_bundled_snapshot(browser, image_server):
    """`invoke build` bundles Pyodide's start-up snapshot: every start restores it,
    the first after installing included, and nothing is stored for it. A stored
    snapshot is read first; one that is not gzip is passed over, one that does not
    restore is deleted and a plain start follows; the next start restores the bundled
    one again. The standard-library modules the engine imports are in it: its import
    loads none of them."""
    from cutout.toolchain.build import SNAPSHOT_PATH

    assert (browser.extension_dir / SNAPSHOT_PATH).stat().st_size > 1_000_000
    timings = _restart_engine(browser, image_server)
    assert timings["boot_snapshot"] == 2 and timings["boot_stdlibImported"] == 0
    assert _snapshot_sizes(browser) == []

    _put_stored_snapshot(browser, gzipped=False)  # unreadable: the bundled one instead
    assert _restart_engine(browser, image_server)["boot_snapshot"] == 2
    _put_stored_snapshot(browser, gzipped=True)  # readable, but not a snapshot
    assert _restart_engine(browser, image_server)["boot_snapshot"] == -1
    assert _snapshot_sizes(browser) == []  # dropped
    assert _restart_engine(browser, image_server)["boot_snapshot"] == 2


def test_a_bundled_snapshot_that_fails_is_replaced_by_a_stored_one(tmp_path, image_server):
    """A bundled snapshot that does not restore (another browser's Pyodide, a damaged
    file): a plain start, then the next start makes and keeps its own (with the engine's
    standard-library imports), which the one after that restores. Keeping it deletes
    a snapshot an earlier build kept under another key."""
    import gzip

    from cutout.headless.chromium import ExtensionBrowser
    from cutout.modes import get_mode
    from cutout.toolchain.build import SNAPSHOT_PATH, build_extension
    from cutout.toolchain.vendor import PYODIDE

    out = tmp_path / "extension"
    build_extension(out, bundle={get_mode("fast").model_on("wasm")})
    (out / SNAPSHOT_PATH).write_bytes(gzip.compress(bytes(4096)))
    with ExtensionBrowser(out) as browser:
        timings = _restart_engine(browser, image_server)
        assert timings["boot_snapshot"] == -1
        assert timings["boot_stdlibImported"] > 0  # a plain start imports them
        _put_stored_snapshot(browser, gzipped=True,
                             key=f"https://engine.invalid/pyodide-{PYODIDE.version}.snapshot.gz")
        timings = _restart_engine(browser, image_server)
        assert timings["boot_snapshot"] == 0 and timings["boot_stdlibImported"] == 0  # made
        deadline = time.monotonic() + 30
        while not ((sizes := _snapshot_sizes(browser)) and max(sizes) > 1_000_000):
            assert time.monotonic() < deadline, sizes  # written in the background
            time.sleep(0.3)
        assert len(sizes) == 1  # the earlier build's is gone
        timings = _restart_engine(browser, image_server)
        assert timings["boot_snapshot"] == 1 and timings["boot_stdlibImported"] == 0


def _job_tab(browser, image_server, mode="balanced"):
    job = browser.start_job(image_server.url("astronaut.jpg"), mode)
    browser.driver.switch_to.new_window("tab")
    browser.driver.get(job["url"])
    return job


def _wait_stage(driver, text, timeout=120):
    deadline = time.monotonic() + timeout
    while text not in driver.find_element("id", "stage").text:
        assert driver.execute_script("return document.body.dataset.state") == "working"
        assert time.monotonic() < deadline, driver.find_element("id", "stage").text
        time.sleep(0.05)


def _wait_state(driver, timeout=180):
    deadline = time.monotonic() + timeout
    while (state := driver.execute_script("return document.body?.dataset.state")) in ("working", None):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return state


def test_engine_closed_mid_job_runs_the_job_again(browser, image_server):
    """The engine's document goes away while the model runs: the result page notices
    (it asks every few seconds), the worker starts a new engine and the job runs again
    there, to a real cut-out."""
    driver = browser.driver
    _job_tab(browser, image_server)
    try:
        _wait_stage(driver, "Finding the subject")
        assert browser.close_engine()
        assert _wait_state(driver) == "done", driver.find_element("id", "error").text
        result = json.loads(driver.execute_script("return document.body.dataset.result"))
        assert (result["width"], result["height"]) == (512, 512) and result["mode"] == "balanced"
        assert result["timings_ms"]["boot_snapshot"] > 0  # a new engine (restored) ran it
    finally:
        driver.close()
        driver.switch_to.window(browser.home)


def test_engine_lost_twice_gives_a_message(browser, image_server):
    """A job whose engine goes away twice ends in a message and Try again, not a loop."""
    driver = browser.driver
    _job_tab(browser, image_server)
    try:
        _wait_stage(driver, "Finding the subject")
        assert browser.close_engine()
        deadline = time.monotonic() + 30
        while not driver.find_element("id", "engine-note").is_displayed():
            assert time.monotonic() < deadline, "the page did not notice the engine stopped"
            time.sleep(0.05)
        _wait_stage(driver, "Finding the subject")  # the second run
        assert browser.close_engine()
        assert _wait_state(driver) == "failed"
        assert "The engine stopped twice" in driver.find_element("id", "error").text
        driver.find_element("id", "retry").click()  # the engine is back: this one works
        assert _wait_state(driver) == "done", driver.find_element("id", "error").text
    finally:
        driver.close()
        driver.switch_to.window(browser.home)
