"""Nothing but the image the user chose is contacted (the fast model is bundled).

Every request of every browser context goes through a recording proxy, so the
log covers the service worker and the offscreen engine too, not just the tab.
Chromium itself still talks to a few of its own services even with every
background-networking switch off (update checks, account and search-engine
preconnects; measured here, see docs/ARCHITECTURE.md); those hosts are named
below and nothing else may appear.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

CHROMIUM_OWN_SERVICES = {
    "update.googleapis.com", "clients2.google.com", "accounts.google.com",
    "optimizationguide-pa.googleapis.com", "start.duckduckgo.com",
    # Chromium 150 (Debian 12): its own sign-in and push-messaging (GCM) services, seen
    # before and during a job whatever the extension does; none carries page content.
    "android.clients.google.com", "www.google.com",
}


def host_of(target: str) -> str:
    target = target.split("://", 1)[-1]
    return target.split("/", 1)[0].rsplit(":", 1)[0]


def test_only_the_chosen_image_is_contacted(extension_dir, page_server, image_server):
    from cutout.headless.chromium import ExtensionBrowser
    from cutout.headless.servers import RecordingProxy

    page_origin = page_server.url().rstrip("/")
    image_origin = image_server.url().rstrip("/")
    proxy = RecordingProxy({page_origin, image_origin})
    try:
        with ExtensionBrowser(extension_dir, proxy.chromium_args()) as browser:
            driver = browser.driver
            driver.switch_to.new_window("tab")
            driver.get(page_server.url("index.html"))
            src = driver.execute_script("return document.getElementById('photo').currentSrc")
            driver.close()
            driver.switch_to.window(browser.home)
            before = len(proxy.log)
            outcome = browser.remove(src)
            assert outcome.state == "done", outcome.error
            time.sleep(2)  # let anything the engine might send late arrive
            during_job = [url for _, url, _ in proxy.log[before:]]
    finally:
        proxy.close()

    contacted = [url for _, url, _ in proxy.log]
    assert src in during_job, "the proxy saw no traffic from the engine: is it in the path?"
    strangers = {url for url in contacted
                 if not url.startswith((page_origin + "/", image_origin + "/"))
                 and host_of(url) not in CHROMIUM_OWN_SERVICES}
    assert not strangers, f"unexpected hosts contacted: {sorted(strangers)}"
    # While the job ran, of the test servers only the chosen image was fetched.
    local = {url for url in during_job if host_of(url) == "127.0.0.1"}
    assert local == {src}, local


def test_extension_code_names_no_remote_host(extension_dir):
    """Static half of the proof: our own code (not the vendored runtimes) names no
    host but the model host it was built with (and the never-fetched Cache Storage keys
    of the models and of the engine's snapshot, on the reserved .invalid domain)."""
    from cutout.toolchain.build import DEFAULT_MODEL_HOST

    allowed = (DEFAULT_MODEL_HOST, "https://models.invalid/", "https://engine.invalid/")
    pattern = re.compile(r"""https?://[^\s"'`)]+""")
    found = {}
    for path in Path(extension_dir).rglob("*"):
        if path.suffix not in {".js", ".html", ".json", ".py"} or "vendor" in path.parts:
            continue
        urls = [u for u in pattern.findall(path.read_text(errors="ignore"))
                if not u.startswith(("http://www.w3.org/", *allowed))]
        if urls:
            found[str(path.relative_to(extension_dir))] = urls
    # The engine's Python ships inside the wheel: scan what the wheel holds.
    import zipfile

    (wheel,) = Path(extension_dir, "engine").glob("cutout-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.startswith("cutout/") and name.endswith(".py") \
                    and name.split("/")[1] in ("engine", "protocol.py", "modes.py"):
                urls = [u for u in pattern.findall(archive.read(name).decode())
                        if not u.startswith(allowed)]
                if urls:
                    found[name] = urls
    assert not found, found
