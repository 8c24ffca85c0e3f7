"""The sampler of a search, by name, seeded: ``tpe`` (default), ``nsga2``, ``gp`` or ``random``.

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


def make_sampler(
    name: str, seed: int, n_trials: int, constraints_func: Constraints = None, *, startup_extra: int = 0
) -> optuna.samplers.BaseSampler:
    """A seeded Optuna sampler.

    ``n_trials`` sizes the random start-up of TPE and GP and NSGA-II's population: a short run still
    leaves the model-based phase some trials.

    Args:
        name: ``tpe``, ``nsga2``, ``gp`` or ``random``.
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
