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


def test_redirect_is_followed_and_the_final_url_shown(browser, image_server):
    outcome = browser.remove(image_server.url("redirect/coffee.jpg"), "fast")
    assert outcome.state == "done", outcome.error
    assert f"Downloaded from {image_server.url('coffee.jpg')} (redirected)." in outcome.result["notes"]


def test_a_server_that_does_not_answer_in_time_gets_a_message(browser, image_server):
    browser.set_settings(fetchTimeoutMs=1000)
    try:
        outcome = browser.remove(image_server.url("slow/coffee.jpg"), "fast")
    finally:
        browser.set_settings(fetchTimeoutMs=None)
    assert outcome.state == "failed"
    assert "did not send the image within 1 s" in outcome.error and "Try again" in outcome.error


@pytest.mark.parametrize("path", ["huge-declared", "huge-stream"])
def test_huge_downloads_are_capped(browser, image_server, path):
    """Refused from Content-Length, or while the bytes arrive when there is none."""
    outcome = browser.remove(image_server.url(path), "fast")
    assert outcome.state == "failed"
    assert "too large to download" in outcome.error and "the limit is 300 MB" in outcome.error
