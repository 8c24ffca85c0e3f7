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
        pytest.skip("chromium is not installed: run `make chromium` (Debian's package; needs root)")
    return found


@pytest.fixture(scope="module")
def rendered(mixed, tmp_path_factory):
    chromium = _chromium()
    url, name = mixed
    tmp = tmp_path_factory.mktemp("render")
    page = write_report(optuna.load_study(study_name=name, storage=url), tmp / "report.html", storage=url)
    n_figures = page.read_text().count('class="autocl-figure"')
    common = [chromium, *FLAGS, f"--user-data-dir={tmp / 'profile'}", "--window-size=1400,3000"]
    dom = subprocess.run([*common, "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=180)
    shot = tmp / "report.png"
    snap = subprocess.run([*common, f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True,
                          timeout=180)
    return dom, snap, shot, n_figures


def test_every_figure_renders_without_script_errors(rendered):
    dom, _, _, n_figures = rendered
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom.stdout).group(1)
    assert f'data-rendered="{n_figures}"' in body and "data-errors" not in body, body
    assert dom.stdout.count('class="plot-container plotly"') == n_figures >= 8
    assert dom.stdout.count("main-svg") >= n_figures
    assert "Uncaught" not in dom.stderr and "autocl figure" not in dom.stderr


def test_a_screenshot_is_taken(rendered):
    _, snap, shot, _ = rendered
    assert snap.returncode == 0, snap.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1400, 3000) and len(data) > 50_000  # a drawn page, not a blank one
