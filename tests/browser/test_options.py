"""Options: default mode, model host (validated), storage, delete downloaded models."""

from __future__ import annotations

import time


def storage(browser, key):
    return browser.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "chrome.storage.local.get(arguments[0]).then((v) => done(v[arguments[0]] ?? null));", key)


def wait_status(driver, text, timeout=5):
    deadline = time.monotonic() + timeout
    while text not in driver.find_element("id", "status").text:
        assert time.monotonic() < deadline, driver.find_element("id", "status").text
        time.sleep(0.05)


def test_options_save_and_validate(browser, model_host):
    from selenium.webdriver.support.ui import Select

    driver = browser.driver
    driver.switch_to.new_window("tab")
    options_tab = driver.current_window_handle
    try:
        driver.get(browser.url("pages/options/options.html"))
        Select(driver.find_element("id", "mode")).select_by_value("portrait")
        wait_status(driver, "Saved")
        host = driver.find_element("id", "host")
        host.clear()
        host.send_keys("ftp://example.invalid/models/\t")
        wait_status(driver, "must be an http")
        driver.switch_to.window(browser.home)
        assert storage(browser, "mode") == "portrait"
        assert storage(browser, "modelHost") == model_host.url()  # the bad value was not saved

        driver.switch_to.window(options_tab)
        driver.find_element("id", "clear").click()
        wait_status(driver, "deleted")
        keys = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "caches.open('cutout-models-v1').then((c) => c.keys()).then((k) => done(k.length));")
        assert keys == 0
        assert "MB used" in driver.find_element("id", "usage").text
    finally:
        driver.switch_to.window(browser.home)
        browser.set_settings(mode="fast")
        driver.switch_to.window(options_tab)
        driver.close()
        driver.switch_to.window(browser.home)
