"""A hostile web page cannot start jobs or read or forge results: it has no way in
(no externally_connectable, an origin of its own for BroadcastChannel), and the
content script answers only the extension."""

from __future__ import annotations

import json
import time

CHANNEL = "cutout-pages"


def page_targets(browser) -> list[str]:
    return [t["url"] for t in browser.cdp("Target.getTargets")["targetInfos"]
            if t["type"] == "page"]


def test_a_hostile_page_cannot_start_jobs_or_forge_results(browser, page_server, image_server):
    driver = browser.driver
    # A real job, open in its result tab, running in Balanced for a few seconds.
    job = browser.start_job(image_server.url("coffee.jpg"), "balanced")
    driver.switch_to.new_window("tab")
    driver.get(job["url"])
    result_tab = driver.current_window_handle
    job_id = job["url"].split("job=", 1)[1]

    # The hostile page, in a tab of its own, tries every door it has.
    driver.switch_to.new_window("tab")
    driver.get(page_server.url("index.html"))
    before = set(page_targets(browser))
    tried = driver.execute_script(f"""
        const forged = {{target: 'page', type: 'done', data: {{job: {json.dumps(job_id)},
          url: 'https://evil.invalid/x.png', filename: 'x.png', width: 1, height: 1, bytes: 1,
          model: 'evil', backend: 'evil', timings_ms: {{total: 1, inference: 1}}, notes: [],
          original_url: '', mode: 'fast', fallback: ''}}}};
        new BroadcastChannel({json.dumps(CHANNEL)}).postMessage(forged);
        window.postMessage({{target: 'worker', type: 'start-job',
          data: {{src: {json.dumps(image_server.url('chelsea.jpg'))}, open: true}}}}, '*');
        window.postMessage(forged, '*');
        return {{runtime: typeof chrome === 'undefined' ? 'none' : typeof chrome.runtime?.sendMessage}};
    """)
    assert tried["runtime"] in ("none", "undefined"), "web pages must not reach the extension"
    time.sleep(2)
    assert set(page_targets(browser)) == before, "a web page opened a result tab"

    # The real result arrives; the forged one was never seen.
    driver.switch_to.window(result_tab)
    deadline = time.monotonic() + 300
    while driver.execute_script("return document.body.dataset.state") not in ("done", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    result = json.loads(driver.execute_script("return document.body.dataset.result"))
    assert result["model"] == "isnet-wasm" and "evil" not in json.dumps(result)
    for handle in driver.window_handles:
        if handle != browser.home:
            driver.switch_to.window(handle)
            driver.close()
    driver.switch_to.window(browser.home)
