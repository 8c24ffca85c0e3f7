"""The sampler of a search, by name, seeded: ``tpe`` (default), ``nsga2``, ``gp`` or ``random``; or
any Optuna sampler instance a caller of the Python API builds.

All are Optuna's own. Each gets the constraints function where it supports one, so trials over a
profile's budgets are ranked as infeasible. ``benchmarks/compare_samplers.py`` compares them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Optional

import optuna

from autocl.errors import ConfigError

SAMPLERS = ("tpe", "nsga2", "gp", "random")

Constraints = Optional[Callable[[optuna.trial.FrozenTrial], list]]


class _RecordsConstraints(optuna.samplers.BaseSampler):
    """A sampler given as an instance, unchanged, except that the profile's budgets are stored as
    each trial's constraints (``system_attrs['constraints']``, what the front reads) when the
    sampler itself was built without a ``constraints_func``."""

    def __init__(self, inner: optuna.samplers.BaseSampler, constraints_func: Callable) -> None:
        self.inner = inner
        self.constraints_func = constraints_func

    def infer_relative_search_space(self, study, trial):
        return self.inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self.inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial):
        self.inner.before_trial(study, trial)

    def after_trial(self, study, trial, state, values):
        # Optuna's own samplers store constraints through this function; pinned to optuna 5
        from optuna.samplers._base import _process_constraints_after_trial

        _process_constraints_after_trial(self.constraints_func, study, trial, state)
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()

    def __repr__(self) -> str:
        return repr(self.inner)


def make_sampler(
    name: str | optuna.samplers.BaseSampler,
    seed: int,
    n_trials: int,
    constraints_func: Constraints = None,
    *,
    startup_extra: int = 0,
) -> optuna.samplers.BaseSampler:
    """A seeded Optuna sampler, or the instance given.

    ``n_trials`` sizes the random start-up of TPE and GP and NSGA-II's population: a short run still
    leaves the model-based phase some trials. An instance is used as it was built (its own seed and
    start-up); the profile's budgets are still stored as constraints, so the front ranks trials over
    them as infeasible (pass ``constraints_func`` to the sampler to also let it steer by them).

    Args:
        name: ``tpe``, ``nsga2``, ``gp`` or ``random``, or any ``optuna.samplers.BaseSampler``.
        seed: The sampler's seed.
        n_trials: The number of trials the run plans.
        constraints_func: Optuna's constraints function (stores the trials' constraints).
        startup_extra: Enqueued trials (the recipes, a warm start), which come on top of the random
            start-up.

    Returns:
        The sampler.

    Raises:
        ConfigError: ``name`` is unknown, or ``gp`` is asked for without torch.
    """
    if isinstance(name, optuna.samplers.BaseSampler):
        own = getattr(name, "_constraints_func", None)
        return name if constraints_func is None or own is not None else _RecordsConstraints(name, constraints_func)
    if not isinstance(name, str):
        raise ConfigError(
            f"a sampler is a name ({', '.join(SAMPLERS)}) or an optuna.samplers.BaseSampler, got {type(name).__name__}",
            field="sampler",
        )
    startup = min(10, max(4, n_trials // 3)) + startup_extra
    with warnings.catch_warnings():  # constraints_func is marked experimental; it is what stores the constraints
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            return optuna.samplers.TPESampler(
                seed=seed, multivariate=True, n_startup_trials=startup, constraints_func=constraints_func
            )
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(
                seed=seed, population_size=max(4, min(20, n_trials // 2)), constraints_func=constraints_func
            )
        if name == "gp":
            try:
                import torch  # noqa: F401  (GPSampler needs torch and scipy; both are autocl dependencies)
            except ImportError as exc:  # pragma: no cover
                raise ConfigError(f"--sampler gp needs torch ({exc})", field="--sampler") from None
            return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup, constraints_func=constraints_func)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
    raise ConfigError(f"unknown sampler {name!r}; use one of {', '.join(SAMPLERS)}", field="--sampler")
