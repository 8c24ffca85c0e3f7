"""A polishing round runs the polished twin it enqueued, not the oldest waiting trial (a by-hand
recipe beyond the budget, a retry), and the trial budget is not overrun (issue 20, item 5)."""

from __future__ import annotations

import optuna

from autocl.study import run_search

COMPLETE, WAITING = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.WAITING


def test_a_polish_round_runs_its_twin_within_the_trial_budget(digits, fast_space, fast_profile, tmp_path):
    polish = fast_space.distill.polish.model_copy(update={"epochs": 0.2, "every": 2, "members": 1, "window": 1.0})
    space = fast_space.model_copy(update={"distill": fast_space.distill.model_copy(update={"polish": polish})})
    result = run_search(
        digits,
        space,
        fast_profile,
        study_name="polbug",
        storage=f"sqlite:///{tmp_path / 'p.db'}",
        n_trials=2,
        remeasure=False,
    )
    trials = result.study.trials
    screened = [t for t in trials if t.state.is_finished() and "polish_of" not in t.user_attrs]
    twins = [t for t in trials if "polish_of" in t.user_attrs]
    waiting = [t for t in trials if t.state == WAITING]
    assert len(screened) == 2, [(t.number, t.state, t.user_attrs.get("recipe")) for t in trials]
    assert twins and all(t.state == COMPLETE for t in twins), [(t.number, t.state) for t in twins]
    assert {t.user_attrs["polish_of"] for t in twins} <= {t.number for t in screened}
    assert all("polish_of" not in t.user_attrs for t in waiting)  # what waits is beyond the budget: recipes
    assert sorted(result.new_trials) == sorted(t.number for t in screened + twins)
