"""The Python API and the report/export/apply commands, as a user runs them."""

import json
import os
import subprocess
import sys

import optuna
import pandas as pd
import pytest

import autocl
from autocl.errors import StudyError
from autocl.study import read_front
from tests.conftest import ROOT
from tests.report.studies import searched_study, synthetic_study, trial_row


@pytest.fixture(scope="module")
def searched(tmp_path_factory, digits, fast_space, fast_profile):
    return searched_study(tmp_path_factory, digits, fast_space, fast_profile)


def autocl_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "autocl", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(ROOT)}, timeout=600)


def test_front_is_a_dataframe_equal_to_the_stored_front(searched):
    url, name = searched
    view = autocl.load_study(name, storage=url)
    df = view.front()
    assert isinstance(df, pd.DataFrame) and not df.empty
    stored = {r["trial"]: r for r in read_front(url, name, "test-cpu")}
    assert set(df["trial"]) == set(stored)
    for row in df.itertuples():
        assert row.latency_ms == pytest.approx(stored[row.trial]["latency_ms"])
        assert row.metric == pytest.approx(stored[row.trial]["metric"])
    # best comparable speed-up first, not raw milliseconds
    assert list(df["normalized_ms"]) == sorted(df["normalized_ms"])
    assert list(df["speedup"]) == sorted(df["speedup"], reverse=True)
    assert df.attrs["metric_name"] == "accuracy"
    trials = view.trials()
    assert len(trials) == len(view.study.trials) and set(trials["status"]) <= {"front", "dominated"}
    assert view.pick("knee").trial.number in set(df["trial"])


def test_missing_studies_are_clear_errors(searched, tmp_path):
    url, _ = searched
    with pytest.raises(StudyError, match="no study named 'nope'.*real"):
        autocl.load_study("nope", storage=url)
    with pytest.raises(StudyError, match="no study database"):
        autocl.load_study("never-searched-here")


def test_import_autocl_stays_light():
    code = "import sys, autocl; print(sorted(m for m in ('torch', 'optuna', 'onnxruntime') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "[]", out.stderr


def test_report_export_apply_from_the_command_line(searched, tmp_path):
    url, name = searched
    run = autocl_cli("report", "--study", name, "--storage", url, "-o", "r.html", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "r.html").stat().st_size > 3_000_000 and "front member(s)" in run.stdout
    run = autocl_cli("export", "--study", name, "--storage", url, "--pick", "knee", "--latency-tolerance", "2",
                     "-o", "bundle", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "--pick knee: trial" in run.stdout and (tmp_path / "bundle" / "MODEL_CARD.md").is_file()
    run = autocl_cli("apply", "--config", "bundle/config.yaml", "--workload", "digits", "-o", "rebuilt",
                     cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "stages.0.conv1" in run.stdout and (tmp_path / "rebuilt" / "model.onnx").is_file()


def test_an_impossible_pick_exits_2_naming_the_condition(searched, tmp_path):
    url, name = searched
    run = autocl_cli("export", "--study", name, "--storage", url, "--pick", "latency_ms<=0.000001", "-o", "b",
                     cwd=tmp_path)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "latency_ms<=1e-06 holds for none" in run.stderr and "Closest: trial" in run.stderr
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("command", [["report"], ["export", "--pick", "knee", "-o", "b"]])
def test_empty_and_failed_only_studies_get_a_message_not_a_traceback(command, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from autocl.cli import app

    url = f"sqlite:///{tmp_path / 'bad.db'}"
    optuna.create_study(study_name="empty", storage=url, directions=["maximize", "minimize", "minimize"])
    synthetic_study([trial_row(None, None, None, error="trial 0 (distilling): loss is NaN")], name="failed",
                    storage=url)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    run = runner.invoke(app, [*command, "--study", "empty", "--storage", url])
    assert run.exit_code == 2 and "has no trials yet" in run.output and run.exception.__class__ is SystemExit
    run = runner.invoke(app, [*command, "--study", "failed", "--storage", url])
    assert run.exit_code == 2 and "1 failed" in run.output and "loss is NaN" in run.output
    assert not (tmp_path / "b").exists()


def test_front_json_and_the_api_agree(searched, tmp_path):
    url, name = searched
    run = autocl_cli("front", "--study", name, "--storage", url, "--format", "json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    cli = {r["trial"] for r in json.loads(run.stdout)}
    assert cli == set(autocl.load_study(name, url).front()["trial"])
