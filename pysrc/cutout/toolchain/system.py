"""System packages the toolchain needs: Debian's Chromium and its driver."""

from __future__ import annotations

import os
import shutil
import subprocess

from ..headless.chromium import CHROMEDRIVER_CANDIDATES, CHROMIUM_CANDIDATES


def chromium_installed() -> bool:
    have = lambda paths, name: any(os.path.exists(p) for p in paths) or shutil.which(name)  # noqa: E731
    return bool(have(CHROMIUM_CANDIDATES, "chromium") and have(CHROMEDRIVER_CANDIDATES, "chromedriver"))


def apt_install_command() -> list[str]:
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    return [*sudo, "sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
            "apt-get install -y -qq chromium chromium-driver"]


def ensure_chromium() -> bool:
    """Install chromium + chromium-driver from Debian when missing; True if it installed."""
    if chromium_installed():
        return False
    subprocess.run(apt_install_command(), check=True)
    return True
