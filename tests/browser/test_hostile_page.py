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


def content_script_world(browser, page_url: str):
    """A DevTools connection to the web page's tab and the id of the execution context
    of Cutout's content script there (its isolated world, with chrome.runtime)."""
    import urllib.request

    import websocket

    address = browser.driver.capabilities["goog:chromeOptions"]["debuggerAddress"]
    # DevTools' list can lag the navigation chromedriver just waited for (seen once in
    # CI on a loaded machine): ask again for a while before calling the tab missing.
    deadline, target, seen = time.monotonic() + 15, None, []
    while target is None and time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://{address}/json/list", timeout=10) as reply:
            listed = json.load(reply)
        seen = [(t.get("type"), t.get("url")) for t in listed]
        target = next((t for t in listed if t.get("url") == page_url and t["type"] == "page"),
                      None)
        if target is None:
            time.sleep(0.25)
    assert target is not None, f"the page's tab is not in DevTools' list: {seen}"
    ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
    ws.send(json.dumps({"id": 1, "method": "Runtime.enable"}))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        message = json.loads(ws.recv())
        context = message.get("params", {}).get("context", {})
        if (message.get("method") == "Runtime.executionContextCreated"
                and context.get("auxData", {}).get("type") == "isolated"
                and browser.extension_id in context.get("origin", "")):
            return ws, context["id"]
    ws.close()
    raise AssertionError("Cutout's content script world was not found in the page")


def evaluate_in(ws, context_id: int, expression: str):
    call = int(time.monotonic() * 1000)
    ws.send(json.dumps({"id": call, "method": "Runtime.evaluate", "params": {
        "expression": expression, "contextId": context_id, "awaitPromise": True,
        "returnByValue": True}}))
    while True:
        message = json.loads(ws.recv())
        if message.get("id") == call:
            result = message["result"]
            assert "exceptionDetails" not in result, result
            return result["result"].get("value")


def test_the_content_script_world_cannot_drive_the_extension(browser, page_server, image_server):
    """Code running in the content script's world (a compromised page script cannot
    reach it, but a bug there could) has chrome.runtime.sendMessage: every request it
    can send to the worker or the engine is refused, and nothing starts or is answered."""
    driver = browser.driver
    finished = browser.remove(image_server.url("chelsea.jpg"), "fast")  # a real result to ask for
    job_id = finished.result["job"]
    driver.switch_to.new_window("tab")
    page = page_server.url("index.html?for=content-script-world")
    driver.get(page)
    ws = None
    try:
        ws, world = content_script_world(browser, page)
        assert evaluate_in(ws, world, "typeof chrome.runtime.sendMessage") == "function"
        jobs_before = browser.worker_evaluate(
            "chrome.storage.session.get(null).then((o) => Object.keys(o).filter((k) => k.startsWith('job:')).length)")
        tabs_before = set(browser.page_targets())
        src = image_server.url("coffee.jpg")
        attempts = [
            {"target": "worker", "type": "start-job", "data": {"src": src, "open": True}},
            {"target": "worker", "type": "run-job", "data": {"job": job_id}},
            {"target": "worker", "type": "zip", "data": {"jobs": [job_id]}},
            {"target": "worker", "type": "device-info", "data": {}},
            {"target": "worker", "type": "release-models", "data": {}},
            {"target": "offscreen", "type": "remove", "data": {"id": "forged", "src": src}},
            {"target": "offscreen", "type": "zip", "data": {"jobs": [job_id]}},
        ]
        replies = evaluate_in(ws, world, f"""Promise.all({json.dumps(attempts)}.map((m) =>
            chrome.runtime.sendMessage(m).then((r) => r === undefined ? 'no answer' : r,
                                              (e) => 'refused: ' + e.message)))""")
        for attempt, reply in zip(attempts, replies):
            assert reply == "no answer" or str(reply).startswith("refused"), (attempt, reply)
        time.sleep(2)
        assert set(browser.page_targets()) == tabs_before, "a tab was opened"
        assert browser.worker_evaluate(
            "chrome.storage.session.get(null).then((o) => Object.keys(o).filter((k) => k.startsWith('job:')).length)"
        ) == jobs_before, "a job was stored"
    finally:
        if ws is not None:
            ws.close()
        driver.close()
        driver.switch_to.window(browser.home)
