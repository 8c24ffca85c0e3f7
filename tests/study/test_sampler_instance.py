"""A search takes any Optuna sampler instance, and the profile's budgets are still stored as constraints."""

from __future__ import annotations

import warnings

import optuna
import pytest

from autocl.errors import ConfigError
from autocl.study import make_sampler


class _Counting(optuna.samplers.RandomSampler):
    def __init__(self) -> None:
        super().__init__(seed=3)
        self.sampled: list[str] = []

    def sample_independent(self, study, trial, param_name, param_distribution):
        self.sampled.append(param_name)
        return super().sample_independent(study, trial, param_name, param_distribution)


def test_an_instance_without_constraints_still_stores_them():
    inner = _Counting()
    sampler = make_sampler(inner, 0, 10, lambda t: t.user_attrs["constraints"])
    study = optuna.create_study(sampler=sampler)

    def objective(trial):
        trial.set_user_attr("constraints", [0.5])
        return trial.suggest_float("x", 0, 1)

    study.optimize(objective, n_trials=2)
    assert inner.sampled == ["x", "x"]
    assert all(t.system_attrs["constraints"] == (0.5,) for t in study.trials)
    with warnings.catch_warnings():  # constraints_func is deprecated in optuna 5, still honoured
        warnings.simplefilter("ignore", FutureWarning)
        tpe = optuna.samplers.TPESampler(constraints_func=lambda t: [0.0])
    assert make_sampler(tpe, 0, 10, lambda t: [1.0]) is tpe  # it records them itself
    with pytest.raises(ConfigError, match="a sampler is a name"):
        make_sampler(42, 0, 10)  # type: ignore[arg-type]


def test_run_search_uses_the_instance_given(digits, fast_space, fast_profile, tmp_path):
    import autocl

    inner = _Counting()
    view = autocl.search(
        digits,
        fast_space,
        fast_profile,
        "inst",
        storage=f"sqlite:///{tmp_path / 'inst.db'}",
        n_trials=2,
        sampler=inner,
        recipes=False,
        remeasure=False,
        polish=False,
        sensitivity=False,
    )
    assert inner.sampled and {"prune.ratio", "distill.temperature"} <= set(inner.sampled)
    done = [t for t in view.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 2
