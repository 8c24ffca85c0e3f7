"""A PostgreSQL URL's password is never printed (issue 20, item 11): not by a refused search or
worker, not in the export hint, not in an error of any kind."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from rich.console import Console

from autocl.errors import ConfigError, StudyError, redact
from tests.conftest import ROOT

SECRET = "hunter2-Secret"
URL = f"postgresql://bob:{SECRET}@127.0.0.1:1/autocl"


def test_redact_hides_the_password_of_every_url_and_nothing_else():
    text = f"cannot open storage {URL!r} (also postgresql+psycopg://u:p%40ss@h/d, http://agent:8000/x, sqlite:///a.db)"
    shown = redact(text)
    assert SECRET not in shown and "p%40ss" not in shown
    assert "postgresql://bob:***@127.0.0.1:1/autocl" in shown and "postgresql+psycopg://u:***@h/d" in shown
    assert "http://agent:8000/x" in shown and "sqlite:///a.db" in shown
    assert SECRET not in str(StudyError(f"no study in {URL}"))
    assert SECRET not in str(ConfigError(f"bad {URL}", file="f.yaml", field="storage"))


@pytest.mark.parametrize(
    "command",
    [
        ["search", "--workload", "digits", "--study", "s", "--trials", "1", "--storage", URL],
        ["worker", "--study", "s", "--storage", URL],
        ["front", "--study", "s", "--storage", URL],
    ],
)
def test_a_command_on_an_unreachable_postgres_never_prints_the_password(command):
    run = subprocess.run(
        [sys.executable, "-m", "autocl", *command],
        cwd=ROOT,
        capture_output=True,
        check=False,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
        timeout=300,
    )
    assert run.returncode == 2, run.stderr
    assert SECRET not in run.stdout + run.stderr, run.stderr
    assert "bob:***@" in run.stdout + run.stderr


def test_the_export_hint_shows_the_storage_without_its_password(monkeypatch):
    from autocl.cli import _search
    from tests.report.studies import synthetic_study, trial_row

    out = io.StringIO()
    monkeypatch.setattr(_search, "console", Console(file=out, width=300))
    study = synthetic_study(
        [trial_row(0.95, 1.0, 10, ratio=0.5), trial_row(0.96, 4.0, 40)], baseline={"metric": 0.96, "latency_ms": 8.0}
    )
    _search._print_keeper(URL, study.study_name, study, 0.05)
    assert "export it:" in out.getvalue(), out.getvalue()
    assert SECRET not in out.getvalue() and "--storage 'postgresql://bob:***@127.0.0.1:1/autocl'" in out.getvalue()
