"""The report opens in headless Chromium: every figure is drawn, no script error, a screenshot is taken."""

import re
import shutil
import struct
import subprocess

import optuna
import pytest

from autocl.report import write_report

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=15000"]


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:  # `make test` installs it (set-up step `chromium`); a test never installs anything
        pytest.skip("chromium is not installed: run `make chromium` (Debian's package, needs root and apt-get)")
    return found
