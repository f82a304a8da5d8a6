"""The Refine view: brushes on the mask, undo, and the hand-off back to the result page."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.keys import Keys
from test_result_page import download_bytes, open_result, pinch  # tests/browser is on sys.path

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def decode(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as im:
        assert im.mode == "RGBA", im.mode
        return np.asarray(im).copy()


def wait_for(driver, script: str, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while not driver.execute_script(script):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def open_refine(driver) -> dict:
    """Click Refine on a finished result; returns the canvas geometry (CSS px and image px)."""
    driver.find_element("id", "refine").click()
    wait_for(driver, "return location.pathname.endsWith('/refine.html') && "
                     "document.body.dataset.state === 'ready'",
             "the refine view did not become ready")
    view = driver.execute_script(
        "const v = document.getElementById('view'); const r = v.getBoundingClientRect();"
        "return {left: r.left, top: r.top, width: r.width, height: r.height,"
        "        imageWidth: +v.dataset.width, imageHeight: +v.dataset.height,"
        "        brush: +document.getElementById('size').value};")
    # Large enough to draw on, and showing the whole image at one scale.
    assert view["width"] >= 300 and view["height"] >= 200, view
    assert abs(view["width"] / view["imageWidth"] - view["height"] / view["imageHeight"]) < 0.01, view
    view["sx"] = view["width"] / view["imageWidth"]
    view["sy"] = view["height"] / view["imageHeight"]
    return view


def stroke(driver, view, points):
    """Drag the mouse through image-pixel `points`; returns them as they were actually
    sent (whole CSS pixels), mapped back to image pixels."""
    css = [(round(view["left"] + x * view["sx"]), round(view["top"] + y * view["sy"])) for x, y in points]
    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(*css[0]).pointer_down()
    for x, y in css[1:]:
        actions.pointer_action.move_to_location(x, y)
    actions.pointer_action.pointer_up()
    actions.perform()
    return [((x - view["left"]) / view["sx"], (y - view["top"]) / view["sy"]) for x, y in css]


def distance_to_segment(shape, a, b) -> np.ndarray:
    """Distance of every pixel centre of an image of `shape` to the segment a-b."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]] + 0.5
    (ax, ay), (bx, by) = a, b
    dx, dy = bx - ax, by - ay
    t = np.clip(((xx - ax) * dx + (yy - ay) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
    return np.hypot(xx - (ax + t * dx), yy - (ay + t * dy))


def horizontal_band(alpha: np.ndarray, value: int, half: int, length: int):
    """A horizontal segment (image px) whose surrounding band of +-half px is all `value`."""
    solid = alpha == value
    h, w = alpha.shape
    for y in range(h // 2, h - half) if value == 255 else range(half, h - half):
        band = solid[y - half:y + half + 1].all(axis=0)
        run = 0
        for x in range(w):
            run = run + 1 if band[x] else 0
            if run >= length + 2 * half:
                x1 = x - half
                return (x1 - length + 0.5, y + 0.5), (x1 + 0.5, y + 0.5)
    raise AssertionError(f"no band of alpha {value} found")


def finish(driver) -> np.ndarray:
    """Done, back on the result page with the refined cut-out; the downloaded PNG."""
    driver.find_element("id", "done").click()
    wait_for(driver, "return location.pathname.endsWith('/result.html') && "
                     "document.body.dataset.state === 'done' && document.body.dataset.refined === 'true'",
             "the result page did not show the refined cut-out", timeout=120)
    return decode(download_bytes(driver))


def close(driver, browser):
    driver.close()
    driver.switch_to.window(browser.home)


def brush_radius(view) -> float:
    """In image px: the size slider is a diameter in CSS px."""
    return view["brush"] / 2 / view["sx"]


def test_erase_stroke_reaches_the_download(browser, image_server):
    driver = open_result(browser, image_server.url("coffee.jpg"))
    try:
        before = decode(download_bytes(driver))
        view = open_refine(driver)
        assert (view["imageWidth"], view["imageHeight"]) == (before.shape[1], before.shape[0])
        r = brush_radius(view)
        a, b = horizontal_band(before[..., 3], 255, int(r) + 4, 60)
        a, b = stroke(driver, view, [a, ((a[0] + b[0]) / 2, a[1]), b])[::2]

        after = finish(driver)
        assert after.shape == before.shape
        d = distance_to_segment(before.shape, a, b)
        inside = (d <= r - 2) & (before[..., 3] == 255)
        assert inside.sum() > 500, inside.sum()
        assert (after[..., 3][inside] == 0).all()
        far = d > r + 3
        assert (after[..., 3][far] == before[..., 3][far]).all()
        assert np.abs(after[far].astype(int) - before[far]).max() <= 1
    finally:
        close(driver, browser)


def test_restore_brings_back_the_original(browser, image_server):
    driver = open_result(browser, image_server.url("coffee.jpg"))
    try:
        before = decode(download_bytes(driver))
        view = open_refine(driver)
        ActionChains(driver).send_keys("r").perform()  # the Restore shortcut
        assert driver.find_element("id", "restore").get_attribute("aria-pressed") == "true"
        r = brush_radius(view)
        a, b = horizontal_band(before[..., 3], 0, int(r) + 4, 60)
        a, b = stroke(driver, view, [a, b])

        after = finish(driver)
        d = distance_to_segment(before.shape, a, b)
        inside = d <= r - 2
        assert inside.sum() > 500 and (before[..., 3][inside] == 0).all()
        assert (after[..., 3][inside] == 255).all()
        with Image.open(SAMPLES / "coffee.jpg") as im:
            original = np.asarray(im.convert("RGB"))
        assert np.abs(after[..., :3][inside].astype(int) - original[inside]).max() <= 2
        far = d > r + 3
        assert (after[..., 3][far] == before[..., 3][far]).all()
    finally:
        close(driver, browser)


def test_undo_reverts_stroke_and_edge_refine(browser, image_server):
    driver = open_result(browser, image_server.url("coffee.jpg"))
    try:
        before = decode(download_bytes(driver))
        view = open_refine(driver)
        undo = driver.find_element("id", "undo")
        assert not undo.is_enabled()
        r = brush_radius(view)
        a, b = horizontal_band(before[..., 3], 255, int(r) + 4, 60)
        stroke(driver, view, [a, b])
        driver.find_element("id", "edge").click()
        assert undo.is_enabled()
        undo.click()  # the Edge refine
        ActionChains(driver).key_down(Keys.CONTROL).send_keys("z").key_up(Keys.CONTROL).perform()  # the stroke
        assert not undo.is_enabled()
        assert driver.find_element("id", "redo").is_enabled()

        after = finish(driver)
        assert (after[..., 3] == before[..., 3]).all()
        assert np.abs(after.astype(int) - before).max() <= 1
    finally:
        close(driver, browser)


def test_edge_refine_changes_only_edges(browser, image_server):
    driver = open_result(browser, image_server.url("coffee.jpg"))
    try:
        before = decode(download_bytes(driver))
        open_refine(driver)
        driver.find_element("id", "edge").click()
        after = finish(driver)
        alpha0, alpha1 = before[..., 3].astype(int), after[..., 3].astype(int)
        assert (alpha0 != alpha1).any()
        # Away from edges and partly transparent pixels (9x9 neighbourhood all
        # equal, all 0 or 255) nothing moves.
        windows = sliding_window_view(np.pad(alpha0, 4, mode="edge"), (9, 9))
        flat = (windows.min(axis=(2, 3)) == windows.max(axis=(2, 3))) & ((alpha0 == 0) | (alpha0 == 255))
        assert flat.any() and (alpha1[flat] == alpha0[flat]).all()
        assert (after[..., :3][flat] == before[..., :3][flat]).all()
    finally:
        close(driver, browser)


def test_background_choice_survives_refine(browser, image_server):
    driver = open_result(browser, image_server.url("coffee.jpg"))
    try:
        transparent = driver.find_element("id", "download").get_attribute("href")
        driver.find_element("css selector", "input[name=background][value='#000000']").click()
        wait_for(driver, f"return document.getElementById('download').href !== {transparent!r}",
                 "the black background was not applied")
        open_refine(driver)
        after = finish(driver)
        assert driver.execute_script(
            "return document.querySelector('input[name=background]:checked').value") == "#000000"
        assert (after[..., 3] == 255).all()
    finally:
        close(driver, browser)


def test_keep_subject_keeps_only_the_clicked_part(browser, image_server):
    """Two separate shapes cut out; a Keep click on one drops the other and keeps the
    clicked one (and its soft edge) exactly."""
    driver = open_result(browser, two_discs(image_server))
    try:
        before = decode(download_bytes(driver))
        a = before[..., 3]
        left, right = a[:, :300], a[:, 300:]
        assert (left[200 - 20:200 + 20, 150 - 20:150 + 20] == 255).all()
        assert (right[200 - 20:200 + 20, 150 - 20:150 + 20] == 255).all()
        view = open_refine(driver)
        ActionChains(driver).send_keys("k").perform()
        assert driver.find_element("id", "keep").get_attribute("aria-pressed") == "true"
        x, y = view["left"] + 150 * view["sx"], view["top"] + 200 * view["sy"]
        actions = ActionBuilder(driver)
        actions.pointer_action.move_to_location(round(x), round(y)).click()
        actions.perform()
        after = finish(driver)
        assert (after[:, 300:, 3] == 0).all(), "the other disc was kept"
        # The clicked disc and its soft edge are untouched; only faint haze away from
        # it (alpha <= 24, more than 2 px off) may go.
        solid = a[:, :300] > 24
        assert np.array_equal(after[:, :300, 3][solid], a[:, :300][solid]), "the clicked disc changed"
        changed = after[:, :300, 3] != a[:, :300]
        assert (a[:, :300][changed] <= 24).all() and (after[:, :300, 3][changed] == 0).all()
    finally:
        close(driver, browser)


def two_discs(image_server) -> str:
    from PIL import ImageDraw

    path = image_server.folder / "two-discs.png"
    if not path.exists():
        im = Image.new("RGB", (600, 400), (245, 245, 245))
        draw = ImageDraw.Draw(im)
        draw.ellipse((70, 120, 230, 280), fill=(180, 30, 30))
        draw.ellipse((370, 120, 530, 280), fill=(30, 60, 170))
        im.save(path)
    return image_server.url(path.name)


def click_at(driver, view, x, y, shift=False):
    """Click image pixel (x, y) of the Refine view, optionally with Shift held."""
    el = driver.find_element("id", "view")
    dx = round(x * view["sx"] - view["width"] / 2)
    dy = round(y * view["sy"] - view["height"] / 2)
    chain = ActionChains(driver)
    if shift:
        chain.key_down(Keys.SHIFT)
    chain.move_to_element_with_offset(el, dx, dy).click()
    if shift:
        chain.key_up(Keys.SHIFT)
    chain.perform()


def ctrl(driver, key, shift=False):
    chain = ActionChains(driver).key_down(Keys.CONTROL)
    if shift:
        chain.key_down(Keys.SHIFT)
    chain.send_keys(key)
    if shift:
        chain.key_up(Keys.SHIFT)
    chain.key_up(Keys.CONTROL).perform()


def keep_left_then_add_right(browser, image_server):
    """Refine on two discs: a Keep click on the left one, then a Shift+click on the right
    one; the driver and the cut-out's alpha before."""
    driver = open_result(browser, two_discs(image_server))
    a = decode(download_bytes(driver))[..., 3]
    view = open_refine(driver)
    ActionChains(driver).send_keys("k").perform()
    click_at(driver, view, 150, 200)
    click_at(driver, view, 450, 200, shift=True)
    return driver, a


def test_keep_shift_click_adds_a_dropped_part_back(browser, image_server):
    """Keep on the left disc drops the right one; Shift+click where the right one was
    brings it back: both discs exactly as cut out."""
    driver, a = keep_left_then_add_right(browser, image_server)
    try:
        after = finish(driver)[..., 3]
        solid = a > 24
        assert np.array_equal(after[solid], a[solid]), "the Shift+click did not bring the disc back"
        assert (after[:, 300:][a[:, 300:] > 24] > 0).all()
    finally:
        close(driver, browser)


def test_keep_undo_and_redo_give_the_exact_previous_pixels(browser, image_server):
    """Keep, Shift+click, then Ctrl+Z: exactly the mask after the first click (the right
    disc gone); Ctrl+Z again and Ctrl+Shift+Z: the same again — undo and redo move
    between exact states."""
    driver, a = keep_left_then_add_right(browser, image_server)
    try:
        ctrl(driver, "z")            # undo the Shift+click
        ctrl(driver, "z")            # undo the Keep click: the cut-out as handed over
        assert driver.find_element("id", "undo").get_attribute("disabled") == "true"
        ctrl(driver, "z", shift=True)  # redo the Keep click
        after = finish(driver)[..., 3]
        assert (after[:, 300:] == 0).all(), "the right disc is back after undo + redo"
        assert np.array_equal(after[:, :300][a[:, :300] > 24], a[:, :300][a[:, :300] > 24])
    finally:
        close(driver, browser)


def smart_erase_across_the_right_disc(browser, image_server):
    """Refine on two discs with "Fix around strokes" on (key A): an Erase stroke across
    the middle third of the right disc (the "wrongly kept patch"), waited until the
    area around it is worked out. The driver, the alpha before and the stroke's pixels."""
    driver = open_result(browser, two_discs(image_server))
    a = decode(download_bytes(driver))[..., 3]
    view = open_refine(driver)
    ActionChains(driver).send_keys("a").perform()
    assert driver.find_element("id", "smart").is_selected()
    points = stroke(driver, view, [(425, 200), (450, 200), (475, 200)])
    wait_for(driver, "return document.body.dataset.state === 'ready' && "
                     "/around the stroke/.test(document.getElementById('message').textContent)",
             "the area around the stroke was not worked out", timeout=60)
    message = driver.find_element("id", "message").text
    assert "more px removed around the stroke" in message, message
    painted = distance_to_segment(a.shape, points[0], points[-1]) <= brush_radius(view) + 1
    return driver, a, painted


def test_an_erase_stroke_removes_the_whole_wrongly_kept_patch(browser, image_server):
    """A stroke across a third of the right disc removes all of it, far beyond the
    brush; the left disc, outside the area, is untouched; the download is full size."""
    driver, a, painted = smart_erase_across_the_right_disc(browser, image_server)
    try:
        after = finish(driver)
        assert after.shape[:2] == a.shape
        right, right_before = after[:, 300:, 3], a[:, 300:]
        beyond = (right_before >= 128) & ~painted[:, 300:]
        assert beyond.sum() > 10_000, "the stroke covered most of the disc: no test"
        assert (right[beyond] == 0).mean() > 0.99, "the disc beyond the stroke was kept"
        assert right.max() < 128, "a visible part of the right disc is left"
        assert np.array_equal(after[:, :300, 3], a[:, :300]), "the left disc changed"
    finally:
        close(driver, browser)


def test_an_erase_stroke_that_re_segments_is_undone_exactly(browser, image_server):
    """Ctrl+Z takes back the stroke and what it re-segmented as one step: the exact
    cut-out as handed over."""
    driver, a, _ = smart_erase_across_the_right_disc(browser, image_server)
    try:
        ctrl(driver, "z")
        assert driver.find_element("id", "undo").get_attribute("disabled") == "true"
        assert np.array_equal(finish(driver)[..., 3], a)
    finally:
        close(driver, browser)


def test_zoom_and_pan_keep_strokes_on_their_pixels(browser, image_server):
    """Refine at 100 % and 200 % (keys 1 and +), Ctrl+wheel, Space+drag pans without
    painting, and an erase stroke drawn while zoomed and scrolled lands on the image
    pixels under the pointer (the export shows it there, at full resolution)."""
    driver = open_result(browser, image_server.url("coffee.jpg"))
    try:
        before = decode(download_bytes(driver))
        open_refine(driver)
        geometry = ("const v = document.getElementById('view'), r = v.getBoundingClientRect(),"
                    " s = document.getElementById('stage');"
                    "return {left: r.left, top: r.top, width: r.width, height: r.height,"
                    " scrollLeft: s.scrollLeft, scrollTop: s.scrollTop,"
                    " scrollable: s.scrollWidth > s.clientWidth,"
                    " level: document.getElementById('zoom-level').textContent};")
        ActionChains(driver).send_keys("1").perform()
        g = driver.execute_script(geometry)
        assert g["level"] == "100 %" and round(g["width"]) == before.shape[1], g
        ActionChains(driver).send_keys("+").perform()
        g = driver.execute_script(geometry)
        assert g["level"] == "200 %" and round(g["width"]) == 2 * before.shape[1] and g["scrollable"], g
        # Ctrl+wheel over the canvas: one step in (400 %) and one out (200 %).
        for delta, level in ((-100, "400 %"), (100, "200 %")):
            driver.execute_script(
                "document.getElementById('view').dispatchEvent(new WheelEvent('wheel',"
                " {deltaY: arguments[0], ctrlKey: true, bubbles: true, cancelable: true,"
                "  clientX: 400, clientY: 300}));", delta)
            assert driver.execute_script(geometry)["level"] == level
        # Space + drag pans: the stage scrolls, nothing is painted.
        g0 = driver.execute_script(geometry)
        el = driver.find_element("id", "view")
        ActionChains(driver).key_down(" ").move_to_element(el).click_and_hold() \
            .move_by_offset(-120, -80).release().key_up(" ").perform()
        g1 = driver.execute_script(geometry)
        assert (g1["scrollLeft"], g1["scrollTop"]) != (g0["scrollLeft"], g0["scrollTop"]), g1
        assert driver.find_element("id", "undo").get_attribute("disabled") == "true", "the pan painted"
        # A short erase stroke in the middle of the visible stage, at 200 %.
        stage = driver.execute_script(
            "const r = document.getElementById('stage').getBoundingClientRect();"
            "return {x: r.left + r.width / 2, y: r.top + r.height / 2};")
        view = {"left": g1["left"], "top": g1["top"], "sx": g1["width"] / before.shape[1],
                "sy": g1["height"] / before.shape[0]}
        ix, iy = (stage["x"] - view["left"]) / view["sx"], (stage["y"] - view["top"]) / view["sy"]
        assert 0 < ix < before.shape[1] and 0 < iy < before.shape[0], (ix, iy)
        a, b = stroke(driver, view, [(ix - 10, iy), (ix + 10, iy)])
        after = finish(driver)
        radius = 30 / 2 / view["sx"]  # the default brush, 30 CSS px across, at 200 %
        d = distance_to_segment(before.shape, a, b)
        assert (after[..., 3][d < radius - 1.5] == 0).all(), "the stroke missed its pixels"
        far = d > radius + 2
        assert np.array_equal(after[..., 3][far], before[..., 3][far]), "pixels away from it changed"
    finally:
        close(driver, browser)


def test_the_status_message_stays_in_view_when_panned(browser, image_server):
    """Zoomed to 400 % and panned to the far corner with Space+drag, a click of Keep
    subject on the background says what to do, and that message shows inside the
    window, not at the bottom of the scrolled-away stage."""
    driver = open_result(browser, image_server.url("coffee.jpg"))
    try:
        alpha = decode(download_bytes(driver))[..., 3]
        open_refine(driver)
        ActionChains(driver).send_keys("1").send_keys("+").send_keys("+").perform()
        geometry = ("const v = document.getElementById('view').getBoundingClientRect(),"
                    " s = document.getElementById('stage'), f = s.getBoundingClientRect();"
                    "return {left: v.left, top: v.top, width: v.width, height: v.height,"
                    " stage: f.toJSON(), scrollTop: s.scrollTop,"
                    " level: document.getElementById('zoom-level').textContent};")
        assert driver.execute_script(geometry)["level"] == "400 %"
        for _ in range(12):  # drag the photo up and left: the stage scrolls to its far corner
            el = driver.find_element("id", "view")
            ActionChains(driver).key_down(" ").move_to_element(el).click_and_hold() \
                .move_by_offset(-250, -180).release().key_up(" ").perform()
        g = driver.execute_script(geometry)
        assert g["scrollTop"] > 2 * g["stage"]["height"], g
        # A background pixel (transparent around it) in the visible part of the stage.
        sx, sy = g["width"] / alpha.shape[1], g["height"] / alpha.shape[0]
        clear = sliding_window_view(np.pad(alpha, 4, constant_values=255), (9, 9)).max(axis=(2, 3)) == 0
        ys, xs = np.nonzero(clear)
        cx, cy = g["left"] + (xs + 0.5) * sx, g["top"] + (ys + 0.5) * sy
        stage = g["stage"]
        inside = ((cx > stage["left"] + 20) & (cx < stage["right"] - 20)
                  & (cy > stage["top"] + 20) & (cy < stage["bottom"] - 60))
        assert inside.any(), "no background in view: the test shows nothing"
        k = np.nonzero(inside)[0][0]
        ActionChains(driver).send_keys("k").perform()
        actions = ActionBuilder(driver)
        actions.pointer_action.move_to_location(int(cx[k]), int(cy[k])).click()
        actions.perform()
        box = driver.execute_script(
            "const m = document.getElementById('message'); const r = m.getBoundingClientRect();"
            "return {text: m.textContent, top: r.top, bottom: r.bottom, height: r.height,"
            " inner: innerHeight};")
        assert "Click on a part of the cut-out" in box["text"], box
        assert box["height"] > 0 and stage["top"] <= box["top"] and box["bottom"] <= min(
            stage["bottom"], box["inner"]), (box, stage)
    finally:
        close(driver, browser)


def test_pinch_zooms_about_the_fingers_and_paints_nothing(browser, image_server):
    """Two fingers (real touch events through CDP) pinch Refine's canvas: the first
    finger's brush dab is taken back when the second lands, spreading them zooms in
    about their midpoint (the image point under it stays there), and the cut-out and
    the undo history are as before."""
    driver = open_result(browser, image_server.url("coffee.jpg"))
    try:
        before = decode(download_bytes(driver))
        open_refine(driver)
        geometry = ("const v = document.getElementById('view').getBoundingClientRect();"
                    "return {left: v.left, top: v.top, width: v.width,"
                    " level: document.getElementById('zoom-level').textContent};")
        g0 = driver.execute_script(geometry)
        cx, cy = g0["left"] + g0["width"] / 2, g0["top"] + 100
        image_x = (cx - g0["left"]) / g0["width"]  # fraction of the width under the midpoint

        pinch(driver, cx, cy, range(30, 90, 10))  # 40 px apart -> 160 px apart
        g1 = driver.execute_script(geometry)
        assert g1["width"] > 3.5 * g0["width"], (g0, g1)
        assert g1["level"].endswith("%") and g1["level"] != g0["level"], g1
        assert abs((cx - g1["left"]) / g1["width"] - image_x) < 0.01, (g0, g1)
        assert driver.find_element("id", "undo").get_attribute("disabled") == "true", "the pinch painted"
        assert np.array_equal(finish(driver), before), "the first finger's dab stayed"
    finally:
        close(driver, browser)


def fast_result(browser, src: str):
    """A finished Fast job of `src` in a tab of the driver's."""
    job = browser.start_job(src, "fast")
    driver = browser.driver
    driver.switch_to.new_window("tab")
    driver.get(job["url"])
    wait_for(driver, "return document.body.dataset.state === 'done'", "the job", timeout=120)
    return driver


def wait_box_done(driver) -> None:
    wait_for(driver, "return document.body.dataset.state === 'ready' && "
                     "document.getElementById('message').textContent.includes('done again')",
             "the box was not done again", timeout=120)


def test_rerun_on_a_box_changes_only_the_box(browser, image_server, fused_model):
    """The box tool: the model runs again on the box alone (at its full input size) and
    its cut-out is pasted in: outside the box every pixel is as before, inside (beyond
    the feathered seam) the alpha is what the native pipeline gives for that crop, and
    it is not simply the old one."""
    from cutout.native.pipeline import load_rgba, predict_alpha

    driver = fast_result(browser, image_server.url("coffee.jpg"))
    try:
        before = decode(download_bytes(driver))[..., 3]
        view = open_refine(driver)
        ActionChains(driver).send_keys("b").perform()
        assert driver.find_element("id", "region").get_attribute("aria-pressed") == "true"
        (ax, ay), (bx, by) = stroke(driver, view, [(100, 60), (250, 180), (400, 300)])[::2]
        x0, y0, x1, y1 = int(min(ax, bx)), int(min(ay, by)), int(np.ceil(max(ax, bx))), int(np.ceil(max(ay, by)))
        wait_box_done(driver)
        after = finish(driver)[..., 3]
        outside = np.ones_like(before, bool)
        outside[y0:y1, x0:x1] = False
        assert np.array_equal(after[outside], before[outside]), "pixels outside the box changed"
        crop = np.ascontiguousarray(load_rgba(image_server.folder / "coffee.jpg")[y0:y1, x0:x1])
        native = predict_alpha(fused_model, crop)
        inner = (slice(y0 + 12, y1 - 12), slice(x0 + 12, x1 - 12))
        got = after[inner].astype(int)
        want = native[12:-12, 12:-12].astype(int)
        assert np.abs(got - want).mean() / 255 <= 0.01, np.abs(got - want).mean() / 255
        assert (np.abs(got - before[inner].astype(int)) > 8).mean() > 0.001, "nothing was re-run"
    finally:
        close(driver, browser)


def test_rerun_on_a_box_is_undone_exactly(browser, image_server):
    """One Ctrl+Z after a box re-run gives back exactly the cut-out before it."""
    driver = fast_result(browser, image_server.url("coffee.jpg"))
    try:
        before = decode(download_bytes(driver))[..., 3]
        view = open_refine(driver)
        ActionChains(driver).send_keys("b").perform()
        stroke(driver, view, [(120, 80), (420, 320)])
        wait_box_done(driver)
        assert driver.find_element("id", "undo").get_attribute("disabled") is None
        ctrl(driver, "z")
        assert np.array_equal(finish(driver)[..., 3], before)
    finally:
        close(driver, browser)


def test_portrait_matte_on_a_box(browser, image_server):
    """The box done with Portrait's matting (MODNet) instead of the cut-out's model: the
    reply names modnet and the inside matches native MODNet on that crop."""
    from selenium.webdriver.support.ui import Select

    from cutout.modes import get_mode, pipeline_options
    from cutout.native.pipeline import load_rgba, predict_alpha
    from cutout.toolchain.build import MODELS_DIR

    driver = fast_result(browser, image_server.url("coffee.jpg"))
    try:
        view = open_refine(driver)
        Select(driver.find_element("id", "region-mode")).select_by_value("portrait")
        ActionChains(driver).send_keys("b").perform()
        (ax, ay), (bx, by) = stroke(driver, view, [(100, 60), (420, 320)])
        x0, y0, x1, y1 = int(ax), int(ay), int(np.ceil(bx)), int(np.ceil(by))
        wait_box_done(driver)
        assert "(modnet," in driver.find_element("id", "message").text
        after = finish(driver)[..., 3]
        crop = np.ascontiguousarray(load_rgba(image_server.folder / "coffee.jpg")[y0:y1, x0:x1])
        native = predict_alpha(MODELS_DIR / "modnet.onnx", crop, **pipeline_options(get_mode("portrait")))
        got = after[y0 + 12:y1 - 12, x0 + 12:x1 - 12].astype(int)
        assert np.abs(got - native[12:-12, 12:-12].astype(int)).mean() / 255 <= 0.01
    finally:
        close(driver, browser)
