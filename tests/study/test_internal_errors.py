"""Internal errors: kept with their traceback, a run of identical ones stops the search, known
refusals stay refusals, and importing autocl leaves logging alone."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import optuna
import pytest

from autocl.errors import ConfigError, StudyError
from tests.conftest import ROOT


def test_three_identical_internal_errors_stop_the_search(digits, fast_space, fast_profile, tmp_path, monkeypatch,
                                                         caplog):
    import autocl.compress.pipeline as pipeline
    from autocl.study import run_search

    def broken(self, cfg, stage=lambda s: None):
        raise ValueError("a bug in the pipeline")

    monkeypatch.setattr(pipeline.Compressor, "artifact", broken)
    url = f"sqlite:///{tmp_path / 'bug.db'}"
    with caplog.at_level(logging.INFO), pytest.raises(StudyError, match=r"trials 0, 1, 2 failed in a row .*"
                                                                        r"ValueError: a bug in the pipeline"):
        run_search(digits, fast_space, fast_profile, study_name="bug", storage=url, n_trials=8, recipes=False,
                   remeasure=False, sensitivity=False, workload_spec="digits")
    study = optuna.load_study(study_name="bug", storage=url)
    assert len(study.trials) == 3 and all(t.state == optuna.trial.TrialState.FAIL for t in study.trials)
    t = study.trials[0]
    assert t.user_attrs["error"].startswith("trial 0 (") and "ValueError: a bug in the pipeline" in t.user_attrs["error"]
    assert "Traceback" in t.user_attrs["traceback"] and "def broken" not in t.user_attrs["error"]
    assert "raise ValueError" in t.user_attrs["traceback"]
    # Optuna's own "Trial N failed ..." lines (and their tracebacks) are not printed beside autocl's
    assert not [r for r in caplog.records if "failed" in r.getMessage() and r.name.startswith("optuna")]
    assert study.user_attrs["workload"]["spec"] == "digits"


def test_a_refusal_in_between_breaks_the_run():
    from autocl.study._search import InternalErrors

    runs = InternalErrors()
    runs.failed(0, "quantizing", "ValueError: x")
    runs.failed(1, "quantizing", "ValueError: x")
    runs.succeeded()
    runs.failed(2, "quantizing", "ValueError: x")
    runs.failed(3, "quantizing", "ValueError: y")  # another error starts a new run
    runs.failed(4, "quantizing", "ValueError: y")
    with pytest.raises(StudyError, match="trials 3, 4, 5"):
        runs.failed(5, "quantizing", "ValueError: y")


def test_a_quantizer_bug_is_not_a_refused_precision(monkeypatch):
    from autocl.compress import support

    def bug(*args, **kwargs):
        raise IndexError("list index out of range")

    def refusal(*args, **kwargs):
        raise ConfigError("layer 'probe' (MatMul) cannot be int4: no kernel")

    support._probe.cache_clear()
    monkeypatch.setattr(support, "quantize_model", bug)
    with pytest.raises(RuntimeError, match="bug, not a precision the runtime refuses"):
        support.unsupported_reason("MatMul", "int8", "CPUExecutionProvider")
    support._probe.cache_clear()
    monkeypatch.setattr(support, "quantize_model", refusal)
    assert "no kernel" in support.unsupported_reason("MatMul", "int8", "CPUExecutionProvider")
    support._probe.cache_clear()


def test_importing_autocl_changes_no_logging_or_warning_filters():
    code = """
import logging, warnings, optuna
def state():
    return (optuna.logging.get_verbosity(), list(logging.getLogger().filters),
            [list(h.filters) for h in logging.getLogger('optuna').handlers],
            [f for f in warnings.filters if f[2] is optuna.exceptions.ExperimentalWarning])
before = state()
import autocl.study, autocl.report, autocl.compress, autocl.export, autocl.api, autocl.cli
print(before == state())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert out.stdout.strip() == "True", out.stderr[-2000:]
