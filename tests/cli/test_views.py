"""Views a user can read: the front table with long names, the stored workload spec, and commands
that must not create a database for a mistyped study name."""

from __future__ import annotations

import pytest
from rich.console import Console
from typer.testing import CliRunner

from autocl.errors import StudyError
from autocl.study import TrialRecord


def _record(number: int, bits: str) -> TrialRecord:
    return TrialRecord(number=number, status="front", reason="", metric=0.91, latency_ms=1.234, latency_iqr_ms=0.01,
                       latency_p90_ms=1.3, size_kb=1234.5, prune_ratio=0.5, temperature=4.0, alpha=0.5, bits=bits,
                       metric_change=-0.012, speedup_search=2.5, distilled=True, compressed=True, polish_of=3,
                       kept_macs=0.25, not_faster=False)


def test_the_front_table_stays_readable_with_a_long_metric_and_64_layers():
    from autocl.cli._common import abbreviate_bits, front_table

    bits = "f" + "8" * 62 + "f"
    metric = "mean_reciprocal_rank_at_ten_v2"  # 30 characters
    assert len(metric) == 30
    table = front_table([_record(12, bits), _record(7, "f" + "8d" * 31 + "f")], metric_name=metric,
                        baseline={"metric": 0.92, "latency_ms": 3.0, "latency_iqr_ms": 0.1, "size_kb": 5000.0},
                        title="front")
    console = Console(width=200, record=True)
    console.print(table)
    text = console.export_text()
    header = "\n".join(text.splitlines()[:4])
    for word in ("trial", "prune", "MACs", "kept", "alpha", "latency", "speed-up", "(search)", "size", "notes"):
        assert word in header, (word, header)
    assert "…" not in text, text  # no column cut short
    assert "f 8×62 f" in text and f"metric: {metric}" in text and "polished #3" in text
    assert abbreviate_bits("f88f") == "f88f"


def test_front_json_keeps_the_full_bits():
    bits = "f" + "8" * 62 + "f"
    assert _record(1, bits).to_row()["bits"] == bits


def test_sensitivity_of_a_mistyped_study_creates_no_database(autocl_home):
    from autocl.cli import app

    result = CliRunner().invoke(app, ["sensitivity", "--study", "typo-never-searched"])
    assert result.exit_code == 2 and "no study database" in result.output
    assert not (autocl_home / "typo-never-searched.db").exists()
    for command in (["front"], ["remeasure"], ["report"]):
        result = CliRunner().invoke(app, [*command, "--study", "typo-never-searched"])
        assert result.exit_code == 2 and "no study database" in result.output, (command, result.output)
    assert not (autocl_home / "typo-never-searched.db").exists()


def test_existing_storage_refuses_a_missing_sqlite_file(tmp_path):
    from autocl.study import existing_storage, load_existing

    with pytest.raises(StudyError, match="no study database"):
        existing_storage("x", f"sqlite:///{tmp_path / 'missing.db'}")
    with pytest.raises(StudyError, match="no study database"):
        load_existing("x", f"sqlite:///{tmp_path / 'missing.db'}")
    assert not (tmp_path / "missing.db").exists()
    assert existing_storage("x", "postgresql://u@h/db") == "postgresql://u@h/db"  # a server is asked, not checked


def test_export_and_remeasure_load_the_stored_workload_spec(monkeypatch):
    import autocl.export as export
    from autocl.report import StudyData
    from autocl.study import workload_spec

    asked = []

    def load(spec):
        asked.append(spec)
        raise export.WorkloadError(f"unknown workload {spec!r}")

    monkeypatch.setattr(export, "load_workload", load)
    data = StudyData(study_name="s", profile="p", profiles=("p",), metric_name="accuracy", higher_is_better=True,
                     layers=(), baseline=None, trials=(), workload={"name": "user-net", "spec": "mypkg.nets:build"})
    with pytest.raises(export.WorkloadError):
        export.resolve_workload(data, None)
    assert asked == ["mypkg.nets:build"]

    class _Study:
        user_attrs = {"workload": {"name": "user-net", "spec": "mypkg.nets:build"}}

    assert workload_spec(_Study()) == "mypkg.nets:build"
    _Study.user_attrs = {"workload": {"name": "mnist"}}  # made before specs were stored
    assert workload_spec(_Study()) == "mnist"


@pytest.mark.parametrize("verbose", [False, True])
def test_verbose_prints_the_stored_traceback_of_an_internal_error(verbose):
    import optuna
    from rich.progress import Progress

    from autocl.cli._search import _ProgressReporter

    trial = optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, user_attrs={
        "error": "trial 3 (quantizing): IndexError: list index out of range",
        "traceback": "Traceback (most recent call last):\n  File \"q.py\", line 9, in f\nIndexError: list index out of range"})
    console = Console(width=200, record=True)
    with Progress(console=console, transient=True) as progress:
        _ProgressReporter(progress, 1, verbose).trial_finished(trial)
    text = console.export_text()
    assert "trial 3 (quantizing): IndexError" in text
    assert ("Traceback (most recent call last)" in text) is verbose and ('File "q.py", line 9' in text) is verbose
