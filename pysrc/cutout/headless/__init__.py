"""Drive the real unpacked extension in headless Chromium (demo, `invoke remove`, tests, bench)."""
