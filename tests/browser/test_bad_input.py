"""Bad input ends in a clear message on the result page, never a hang."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("missing.png", "HTTP 404"),
        ("private/photo.jpg", "logged in"),
        ("notes.html", "not an image"),
        ("corrupt.jpg", "could not be decoded"),
        ("empty.png", "could not be decoded"),
        ("drawing.svg", "SVG"),
        ("bomb.png", "too large (30000x30000"),
    ],
)
def test_bad_file_gives_clear_message(browser, image_server, name, expected):
    outcome = browser.remove(image_server.url(name), timeout=60)
    assert outcome.state == "failed"
    assert expected in outcome.error, outcome.error


def test_unreachable_host(browser):
    outcome = browser.remove("http://127.0.0.1:9/photo.jpg", timeout=60)
    assert outcome.state == "failed"
    assert "could not be reached" in outcome.error, outcome.error


def test_blob_url_is_explained(browser):
    outcome = browser.remove("blob:https://example.invalid/0d4c5b7e", timeout=60)
    assert outcome.state == "failed"
    assert "blob:" in outcome.error


def test_unknown_mode(browser, image_server):
    outcome = browser.remove(image_server.url("coffee.jpg"), mode="turbo", timeout=60)
    assert outcome.state == "failed"
    assert "unknown mode" in outcome.error


def test_worker_start_failure_is_shown(browser):
    """When the worker cannot even create a job, the tab it opens says why."""
    from urllib.parse import quote

    driver = browser.driver
    driver.switch_to.new_window("tab")
    try:
        driver.get(browser.url("pages/result/result.html?error=" + quote("Cutout could not start: quota")))
        assert driver.execute_script("return document.body.dataset.state") == "failed"
        assert "quota" in driver.find_element("id", "error").text
    finally:
        driver.close()
        driver.switch_to.window(browser.home)
