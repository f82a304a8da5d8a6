"""Headless Chromium with the unpacked extension loaded, through selenium.

The flags are the ones measured to work on these machines (see
docs/ARCHITECTURE.md): without the background-networking switches Chromium
keeps calling Google hosts, which a closed network refuses and which would
also break the "contacts nothing but the image and the model host" promise.
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/lib/chromium/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER_CANDIDATES = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


def find_binary(candidates: tuple[str, ...], name: str) -> str:
    for path in candidates:
        if Path(path).exists():
            return path
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(f"{name} not found; install Debian's chromium and chromium-driver "
                            "(`invoke deps` does it)")


# Headless Chromium has a WebGPU adapter only with this switch: SwiftShader, a
# software renderer (correct, far too slow to time). Without it there is none.
WEBGPU_ARGS = ("--enable-unsafe-webgpu",)


def browser_args(backend: str | None) -> tuple[str, ...]:
    """Chromium switches for a run that asks for `backend`."""
    return WEBGPU_ARGS if backend == "webgpu" else ()


# Measures the result page's responsiveness: a timer every 10 ms records how much
# later than asked it fired, the longest such delay until the job has finished. (Not
# a busy setTimeout(0) loop: on 2 cores that would take CPU from the model.)
STALL_PROBE = """
window.__cutoutStall = 0;
let last = performance.now();
(function tick() {
  const now = performance.now();
  window.__cutoutStall = Math.max(window.__cutoutStall, now - last - 10);
  last = now;
  if (!['done', 'failed'].includes(document.body.dataset.state)) setTimeout(tick, 10);
})();
"""

# Waits for the result page's state to settle without polling: a chromedriver round
# trip every 0.1 s took ~9 % from the model's run on 2 cores (probe, 2026-12-06), and
# the peer's benchmark run is one async script with nothing polling either.
WAIT_FOR_STATE = """
const [timeoutMs, done] = [arguments[0], arguments[arguments.length - 1]];
const settled = () => ['done', 'failed'].includes(document.body.dataset.state);
if (settled()) return done(document.body.dataset.state);
const observer = new MutationObserver(() => {
  if (settled()) { observer.disconnect(); clearTimeout(timer); done(document.body.dataset.state); }
});
const timer = setTimeout(() => { observer.disconnect(); done(document.body.dataset.state || ''); },
                         timeoutMs);
observer.observe(document.body, { attributes: true, attributeFilter: ['data-state'] });
"""


def download_bytes(driver: webdriver.Chrome, link_id: str = "download") -> bytes:
    """The file a link of the page in `driver`'s tab offers (default: the result page's
    Download button)."""
    encoded = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(document.getElementById(arguments[0]).href).then((r) => r.blob())"
        ".then((b) => { const f = new FileReader(); f.onload = () => done(f.result); f.readAsDataURL(b); });",
        link_id)
    return base64.b64decode(encoded.split(",", 1)[1])


def start_chromium(profile: str, extra_args: tuple[str, ...] = ()) -> webdriver.Chrome:
    """Headless Chromium on a fresh profile with the switches measured to work here."""
    options = webdriver.ChromeOptions()
    options.binary_location = find_binary(CHROMIUM_CANDIDATES, "chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-quic",
                "--disable-default-apps", "--no-pings", "--disable-domain-reliability",
                "--disable-client-side-phishing-detection", "--no-default-browser-check",
                "--disable-features=DisableLoadExtensionCommandLineSwitch,OptimizationHints,"
                "NetworkTimeServiceQuerying,MediaRouter",
                f"--user-data-dir={profile}", *extra_args):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(find_binary(CHROMEDRIVER_CANDIDATES, "chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_script_timeout(600)
    # Long scripts (a SwiftShader WebGPU run, a peer on 2 cores) outlast the 120 s default.
    driver.command_executor._client_config.timeout = 900
    return driver


class PlainBrowser:
    """Headless Chromium without the extension (the peer's benchmark page)."""

    def __init__(self) -> None:
        self.profile = tempfile.mkdtemp(prefix="cutout-peer-profile-")
        self.driver = start_chromium(self.profile)

    def relaunch(self) -> webdriver.Chrome:
        """Quit Chromium and start it again on the same profile (HTTP cache kept)."""
        self.driver.quit()
        self.driver = start_chromium(self.profile)
        return self.driver

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> PlainBrowser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class JobOutcome:
    src: str
    state: str  # "done" or "failed"
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    png: bytes = b""
    wall_s: float = 0.0
    # Longest gap between two macrotasks of the result page while the job ran: how
    # long a person's clicks would have waited (the engine shares the pages' renderer).
    page_stall_ms: float = 0.0


class ExtensionBrowser:
    """One headless Chromium profile with the extension; use as a context manager."""

    def __init__(self, extension_dir: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.extension_dir = extension_dir.resolve()
        self.profile = tempfile.mkdtemp(prefix="cutout-profile-")
        self._args = (f"--disable-extensions-except={self.extension_dir}",
                      f"--load-extension={self.extension_dir}", *extra_args)
        self.driver = start_chromium(self.profile, self._args)
        try:
            self._attach()
        except Exception:
            self.close()  # no orphaned Chromium or profile folder
            raise

    def _attach(self) -> None:
        self.extension_id = self._find_extension_id()
        self.home = self.driver.current_window_handle

    def relaunch(self) -> None:
        """Quit Chromium and start it again on the same profile, the extension's storage,
        caches and stored models kept: a person's browser restart."""
        self.driver.quit()
        self.driver = start_chromium(self.profile, self._args)
        self._attach()

    def _find_extension_id(self, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for target in self.cdp("Target.getTargets")["targetInfos"]:
                url = target.get("url", "")
                if target.get("type") == "service_worker" and url.startswith("chrome-extension://"):
                    return url.split("/")[2]
            time.sleep(0.2)
        raise RuntimeError("the extension's service worker did not start: is build/extension valid?")

    def cdp(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.driver.execute_cdp_cmd(method, params or {})

    def url(self, path: str) -> str:
        return f"chrome-extension://{self.extension_id}/{path.lstrip('/')}"

    def send(self, message: dict[str, Any]) -> Any:
        """Send a runtime message from an extension page, as the popup does."""
        self._ensure_extension_page()
        return self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "chrome.runtime.sendMessage(arguments[0]).then(done, (e) => done({error: String(e)}));",
            message)

    def set_settings(self, **settings: Any) -> None:
        """Write extension settings (chrome.storage.local), as the options page does."""
        self._ensure_extension_page()
        self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "chrome.storage.local.set(arguments[0]).then(() => done(), (e) => done(String(e)));",
            settings)

    def _ensure_extension_page(self) -> None:
        self.driver.switch_to.window(self.home)
        if not self.driver.current_url.startswith(f"chrome-extension://{self.extension_id}/"):
            self.driver.get(self.url("pages/popup/popup.html"))

    def worker_evaluate(self, expression: str, timeout: float = 60) -> Any:
        """Evaluate `expression` in the extension's service worker over its own DevTools
        connection (chromedriver only drives pages) and return its awaited value."""
        import urllib.request

        import websocket  # websocket-client, a dependency of selenium

        address = self.driver.capabilities["goog:chromeOptions"]["debuggerAddress"]
        deadline = time.monotonic() + 20
        while True:
            with urllib.request.urlopen(f"http://{address}/json/list", timeout=10) as reply:
                worker = next((t for t in json.load(reply) if t.get("type") == "service_worker"
                               and self.extension_id in t.get("url", "")), None)
            if worker is not None:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the extension's service worker did not start")
            # Stopped (idle, or by a test): any message from an extension page wakes it.
            self._ensure_extension_page()
            self.driver.execute_script(
                "chrome.runtime.sendMessage({target: 'worker', type: 'wake'}).catch(() => {});")
            time.sleep(0.3)
        ws = websocket.create_connection(worker["webSocketDebuggerUrl"], timeout=timeout,
                                         suppress_origin=True)
        try:
            ws.send(json.dumps({"id": 1, "method": "Runtime.evaluate", "params": {
                "expression": expression, "awaitPromise": True, "returnByValue": True}}))
            while True:
                message = json.loads(ws.recv())
                if message.get("id") == 1:
                    break
        finally:
            ws.close()
        result = message.get("result", {})
        if "exceptionDetails" in result:
            raise RuntimeError(f"in the worker: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def stop_service_worker(self) -> None:
        """Stop the worker the way Chrome does when it is idle."""
        for target in self.cdp("Target.getTargets")["targetInfos"]:
            if target.get("type") == "service_worker" and self.extension_id in target.get("url", ""):
                self.cdp("Target.closeTarget", {"targetId": target["targetId"]})

    def start_job(self, src: str, mode: str | None = None, open_tab: bool = False,
                  backend: str | None = None, model_side: int | None = None) -> dict[str, str]:
        """Start a job through the worker's entry point (the one the context menu calls).

        With open_tab the worker opens the result tab itself, as after a
        right-click; chromedriver does not list tabs an extension opens, so the
        driver normally shows the result page in a tab of its own instead.
        """
        reply = self.send({"target": "worker", "type": "start-job",
                           "data": {"src": src, "mode": mode, "open": open_tab,
                                    "backend": backend, "modelSide": model_side}})
        if not isinstance(reply, dict) or "id" not in reply:
            raise RuntimeError(f"start-job failed: {reply}")
        return reply

    def close_pages(self, urls: set[str]) -> None:
        """Close tabs the driver does not track (opened by the extension) by URL."""
        for target in self.cdp("Target.getTargets")["targetInfos"]:
            if target["type"] == "page" and target["url"] in urls:
                self.cdp("Target.closeTarget", {"targetId": target["targetId"]})

    def page_targets(self) -> list[str]:
        return [t["url"] for t in self.cdp("Target.getTargets")["targetInfos"] if t["type"] == "page"]

    def wait_for_job(self, job: dict[str, str], src: str, timeout: float = 300) -> JobOutcome:
        start = time.monotonic()
        driver = self.driver
        driver.switch_to.new_window("tab")
        driver.get(job["url"])
        driver.execute_script(STALL_PROBE)
        driver.set_script_timeout(max(600, timeout + 60))
        left_ms = max(0.0, timeout - (time.monotonic() - start)) * 1000
        state = driver.execute_async_script(WAIT_FOR_STATE, left_ms)
        if state not in ("done", "failed"):
            raise TimeoutError(f"job for {src} did not finish in {timeout:.0f} s (state {state!r})")
        outcome = JobOutcome(src, state, wall_s=time.monotonic() - start,
                             page_stall_ms=float(driver.execute_script("return window.__cutoutStall")))
        if state == "done":
            outcome.result = json.loads(driver.execute_script("return document.body.dataset.result"))
            outcome.png = download_bytes(driver)
        else:
            outcome.error = driver.execute_script("return document.getElementById('error').textContent")
        driver.close()
        driver.switch_to.window(self.home)
        return outcome

    def engine_running(self) -> bool:
        """Whether the engine's offscreen document exists."""
        return any("offscreen/offscreen.html" in t["url"]
                   for t in self.cdp("Target.getTargets")["targetInfos"])

    def close_engine(self) -> bool:
        """Close the engine's offscreen document from an extension page (its next start
        restores as after a browser restart); whether there was one to close. The
        driver stays on the tab it was on."""
        tab = self.driver.current_window_handle
        self._ensure_extension_page()
        reply = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "chrome.offscreen.closeDocument().then(() => done('closed'), (e) => done(String(e)));")
        self.driver.switch_to.window(tab)
        return reply == "closed"

    def right_click(self, element_id: str) -> None:
        """A person's right-click (a trusted contextmenu event) on the current tab's element."""
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(self.driver).context_click(self.driver.find_element("id", element_id)).perform()

    @staticmethod
    def menu_info(page: str, src: str | None = None, menu: str = "cutout-image") -> dict[str, Any]:
        """The info Chrome passes to onClicked for one of Cutout's menu items on `page`
        ("Remove background" on the image `src`, or the one found under the pointer)."""
        return {"menuItemId": menu, "frameId": 0, "pageUrl": page,
                **({"srcUrl": src, "mediaType": "image"} if menu == "cutout-image" else {})}

    def click_menu(self, page: str, *infos: dict[str, Any]) -> float:
        """Menu choices on the tab showing `page`, all at once: the worker's registered
        onClicked handler called with a genuine tab and each info; the ms they took."""
        return float(self.worker_evaluate(f"""(async () => {{
            const [tab] = await chrome.tabs.query({{url: {json.dumps(page)}}});
            const started = performance.now();
            await Promise.all({json.dumps(list(infos))}.map((info) => self.onContextMenuClicked(info, tab)));
            return performance.now() - started;
        }})()"""))

    def menu_job(self, page: str, menu: str = "cutout-image", timeout: float = 300) -> JobOutcome:
        """A menu choice after a right-click on the tab showing `page` (its #photo for
        "Remove background"), and the result tab it opens, followed to the end here
        (chromedriver does not drive tabs an extension opens). wall_s counts from the
        choice."""
        start = time.monotonic()
        src = self.driver.execute_script("return document.getElementById('photo').currentSrc")
        before = set(self.page_targets())
        page_tab = self.driver.current_window_handle
        self.click_menu(page, self.menu_info(page, src, menu))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (set(self.page_targets()) - before):
            time.sleep(0.05)
        (opened,) = set(self.page_targets()) - before
        outcome = self.wait_for_job({"url": opened}, src or page, timeout)
        self.close_pages({opened})
        self.driver.switch_to.window(page_tab)
        outcome.wall_s = time.monotonic() - start
        return outcome

    def remove(self, src: str, mode: str | None = None, timeout: float = 300,
               backend: str | None = None, model_side: int | None = None) -> JobOutcome:
        return self.wait_for_job(self.start_job(src, mode, backend=backend, model_side=model_side),
                                 src, timeout)

    def console_log(self) -> list[dict[str, Any]]:
        return self.driver.get_log("browser")

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> ExtensionBrowser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
