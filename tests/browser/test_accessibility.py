"""Accessibility and layout of every page, reached as a person reaches it: each control
has a name and takes keyboard focus, text keeps WCAG AA contrast in the light and the
dark colour scheme, nothing overflows the popup's 360 px or a result of a 4K photo."""

from __future__ import annotations

import json
import time

import pytest

# In the page: visible controls, whether Tab reaches them, and text contrast.
AUDIT = r"""
const visible = (el) => {
  const r = el.getBoundingClientRect(), s = getComputedStyle(el);
  return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none';
};
const controls = [...document.querySelectorAll(
  'button, input:not([type=hidden]), select, textarea, a[href], [tabindex]')]
  .filter((el) => !el.disabled && el.tabIndex >= 0 && visible(el)
    && !el.closest('[hidden], [inert], [aria-hidden="true"]'));
// The control a person sees: a file input inside its label (the drop zone) is the label.
const describe = (el) => `${el.tagName.toLowerCase()}#${el.id || ''}.${el.className || ''}`;

const rgba = (text) => (text.match(/[\d.]+/g) || [0, 0, 0, 0]).map(Number);
const lum = ([r, g, b]) => {
  const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
};
const over = (top, under) => {  // alpha-composite a colour over an opaque one
  const a = top.length > 3 ? top[3] : 1;
  return [0, 1, 2].map((i) => top[i] * a + under[i] * (1 - a));
};
function background(el) {  // the opaque colour behind el's text
  const layers = [];
  for (let node = el; node; node = node.parentElement) {
    const s = getComputedStyle(node);
    const c = rgba(s.backgroundColor);
    if (s.backgroundImage !== 'none' && !node.matches('select')) return null;  // an image: skip
    if ((c.length > 3 ? c[3] : 1) > 0) layers.push(c);
    if ((c.length > 3 ? c[3] : 1) >= 1) break;
  }
  let base = [255, 255, 255];
  for (const layer of layers.reverse()) base = over(layer, base);
  return base;
}
const low = [];
for (const el of document.querySelectorAll('body *')) {
  const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  if (!own || !visible(el) || el.closest('[hidden]')) continue;
  const s = getComputedStyle(el);
  const bg = background(el);
  if (!bg) continue;
  let opacity = 1;
  for (let node = el; node; node = node.parentElement) opacity *= Number(getComputedStyle(node).opacity);
  const fg = over([...rgba(s.color).slice(0, 3), (rgba(s.color)[3] ?? 1) * opacity], bg);
  const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  const ratio = (a + 0.05) / (b + 0.05);
  const size = parseFloat(s.fontSize), bold = Number(s.fontWeight) >= 700;
  const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
  const disabled = el.closest('button:disabled, select:disabled, input:disabled');
  if (ratio < need && !disabled) low.push(`${describe(el)} "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)} < ${need}`);
}
return {
  controls: controls.map(describe),
  overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
  lowContrast: low,
};
"""


def ax_unnamed(driver) -> list[str]:
    """Focusable nodes of the accessibility tree without a name (what a screen reader
    would announce as just "button")."""
    tree = driver.execute_cdp_cmd("Accessibility.getFullAXTree", {})["nodes"]
    roles = {"button", "checkbox", "combobox", "textbox", "link", "slider", "radio",
             "spinbutton", "switch", "tab", "menuitem", "listbox"}
    unnamed = []
    for node in tree:
        role = node.get("role", {}).get("value")
        if node.get("ignored") or role not in roles:
            continue
        if not str(node.get("name", {}).get("value", "")).strip():
            unnamed.append(f"{role} (backend node {node.get('backendDOMNodeId')})")
    return unnamed


def tab_reached(driver, count: int) -> set[str]:
    """What Tab focuses, pressed count + 2 times from the top of the page."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    driver.execute_script("document.activeElement?.blur(); window.scrollTo(0, 0);")
    reached = set()
    for _ in range(count + 2):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        reached.add(driver.execute_script(
            "const el = document.activeElement;"
            "return `${el.tagName.toLowerCase()}#${el.id || ''}.${el.className || ''}`;"))
    return reached


def audit(driver, scheme: str) -> dict:
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
        "features": [{"name": "prefers-color-scheme", "value": scheme}]})
    time.sleep(0.2)
    return driver.execute_script(AUDIT)


def check_page(driver, name: str) -> None:
    problems = []
    for scheme in ("light", "dark"):
        found = audit(driver, scheme)
        problems += [f"{name} {scheme}: low contrast {x}" for x in found["lowContrast"]]
        if found["overflow"] > 0:
            problems.append(f"{name} {scheme}: {found['overflow']} px wider than the window")
    problems += [f"{name}: no accessible name: {x}" for x in ax_unnamed(driver)]
    controls = set(audit(driver, "light")["controls"])
    missed = controls - tab_reached(driver, len(controls))
    problems += [f"{name}: Tab never reaches {x}" for x in sorted(missed)]
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    assert not problems, "\n".join(problems)


def manifest(browser) -> dict:
    return json.loads((browser.extension_dir / "manifest.json").read_text())


@pytest.fixture
def tab(browser):
    driver = browser.driver
    driver.switch_to.new_window("tab")
    yield driver
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    driver.close()
    driver.switch_to.window(browser.home)


def test_popup_at_its_360_px(browser, tab):
    tab.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 360, "height": 600, "deviceScaleFactor": 1, "mobile": False})
    tab.get(browser.url(manifest(browser)["action"]["default_popup"]))
    deadline = time.monotonic() + 60
    while "Asking the engine" in tab.find_element("id", "status").text:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    check_page(tab, "popup")


def test_options_page(browser, tab):
    tab.get(browser.url(manifest(browser)["options_page"]))
    deadline = time.monotonic() + 60
    while not tab.execute_script("return document.body.dataset.tier"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    check_page(tab, "options")


def wait_state(driver, timeout=120):
    deadline = time.monotonic() + timeout
    while driver.execute_script("return document.body?.dataset.state") in (None, "working"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return driver.execute_script("return document.body.dataset.state")


@pytest.fixture
def uhd_job(browser, image_server):
    return browser.start_job(image_server.url("uhd.jpg"), "fast")  # before `tab`: it uses home


def test_result_and_refine_of_a_4k_photo(browser, uhd_job, tab):
    """A 3840x2160 photo's result view and its Refine view: no sideways scrolling at a
    1280 px window, every control named and reachable, text readable."""
    tab.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
    tab.get(uhd_job["url"])
    assert wait_state(tab) == "done"
    check_page(tab, "result")
    tab.find_element("id", "refine").click()
    deadline = time.monotonic() + 60
    while not tab.execute_script("return location.pathname.endsWith('/refine.html') && "
                                 "document.body.dataset.state === 'ready'"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    check_page(tab, "refine")


def test_batch_view_with_a_failed_item(browser, image_server):
    """The batch view the popup opens for two files, one of them corrupt."""
    from test_batch import open_batch_from_popup  # tests/browser is on sys.path

    folder = image_server.folder
    url = open_batch_from_popup(browser, [folder / "chelsea.jpg", folder / "corrupt.jpg"])
    driver = browser.driver
    driver.switch_to.new_window("tab")
    try:
        driver.get(url)
        deadline = time.monotonic() + 120
        while driver.execute_script("return document.body.dataset.state") != "finished":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        check_page(driver, "batch")
    finally:
        driver.close()
        driver.switch_to.window(browser.home)
