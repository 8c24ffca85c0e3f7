"""A trial stopped by Ctrl-C or SIGTERM is failed with the reason and retried once, as a killed
worker's trial is (issue 20, item 6): an interrupted recipe or polished twin is not lost."""

from __future__ import annotations

import optuna
import pytest

from autocl.study._trial_run import _PENDING, Interrupted, TrialRun

WAITING = optuna.trial.TrialState.WAITING
FAIL = optuna.trial.TrialState.FAIL


def _study() -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.enqueue_trial({"x": 0.25}, user_attrs={"recipe": True})
    return study


def _interrupted(trial: optuna.Trial):
    trial.suggest_float("x", 0.0, 1.0)
    trial.set_user_attr("config", {"recorded": "by the run"})
    raise KeyboardInterrupt("Ctrl-C")


def _swallowed_sigterm(trial: optuna.Trial):
    trial.suggest_float("x", 0.0, 1.0)
    _PENDING.append("SIGTERM")  # what the handler records before a library turns it into another error
    raise RuntimeError("an exporter swallowed the interrupt")


@pytest.mark.parametrize(("objective", "why"), [(_interrupted, "Ctrl-C"), (_swallowed_sigterm, "SIGTERM")])
def test_an_interrupted_trial_is_retried_once_with_its_parameters_and_origin(objective, why):
    study = _study()
    _PENDING.clear()
    try:
        with pytest.raises(KeyboardInterrupt):
            study.optimize(TrialRun().wrap(objective), n_trials=1)
    finally:
        _PENDING.clear()
    first = study.trials[0]
    assert first.state == FAIL and f"interrupted ({why})" in first.user_attrs["error"]
    waiting = study.get_trials(states=(WAITING,))
    assert len(waiting) == 1 and waiting[0].params == {"x": 0.25}
    assert waiting[0].system_attrs["failed_trial"] == 0
    assert waiting[0].user_attrs == {"recipe": True}  # its origin, not what the run recorded

    # the retry interrupted again is not retried a second time
    with pytest.raises(KeyboardInterrupt):
        study.optimize(TrialRun().wrap(_interrupted), n_trials=1)
    assert study.trials[1].state == FAIL and not study.get_trials(states=(WAITING,))


def test_interrupted_is_a_keyboard_interrupt():
    assert issubclass(Interrupted, KeyboardInterrupt)


def test_a_worker_fails_and_retries_once_the_trial_of_a_worker_killed_on_its_host(tmp_path):
    """What tests/study/test_postgres.py's three-workers run (``make test-slow``) shows end to end, on
    one SQLite study in-process: before its next trial, a live worker fails the RUNNING trial whose
    process on this host is gone, and that trial runs again once, with its parameters, here."""
    import os
    import socket
    import subprocess

    url = f"sqlite:///{tmp_path / 'killed.db'}"
    victim = optuna.create_study(study_name="k", storage=url, directions=["maximize", "minimize"])
    dead = subprocess.Popen(["true"])
    dead.wait()  # a process of this host that is gone
    running = victim.ask({"x": optuna.distributions.FloatDistribution(0.0, 1.0)})
    running.set_user_attr("worker", {"host": socket.gethostname(), "pid": dead.pid, "started": None})
    running.set_user_attr("config", {"recorded": "by the killed worker"})

    def objective(trial: optuna.Trial):
        return trial.suggest_float("x", 0.0, 1.0), 1.0

    survivor = optuna.load_study(study_name="k", storage=url)
    survivor.optimize(TrialRun().wrap(objective), n_trials=2)
    killed = survivor.trials[running.number]
    assert killed.state == FAIL and "died while the trial ran" in killed.user_attrs["error"]
    retries = [t for t in survivor.trials if t.system_attrs.get("failed_trial") == running.number]
    assert len(retries) == 1 and retries[0].params == killed.params
    assert retries[0].state == optuna.trial.TrialState.COMPLETE and retries[0].user_attrs["worker"]["pid"] == os.getpid()
    assert "config" not in retries[0].user_attrs  # not what the killed run recorded
