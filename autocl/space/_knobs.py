"""Knobs: how a search space writes one searched value, and how a trial samples it.

Every numeric knob is a fixed number, a list of choices, or a :class:`Range`. These helpers are
shared by the built-in space sections and by technique plug-ins (``autocl.techniques``).
"""

from __future__ import annotations

from typing import Any, Union

import optuna
from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Range(_Strict):
    """A numeric range sampled by Optuna; ``step`` makes it discrete (and student caching likelier)."""

    low: float
    high: float
    step: float | None = None
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        if self.step is not None and self.log:
            raise ValueError("step and log cannot be combined (Optuna samples one or the other)")
        if self.step is not None and self.step <= 0:
            raise ValueError("step must be positive")
        return self


Knob = Union[float, list[float], Range]


_RULES = (
    ("ge", ">=", lambda v, b: v < b),
    ("gt", ">", lambda v, b: v <= b),
    ("le", "<=", lambda v, b: v > b),
    ("lt", "<", lambda v, b: v >= b),
)


def bounds_check(config_cls: type[BaseModel], field: str):
    """A validator refusing knob values the configuration record ``config_cls.field`` would refuse
    (the one definition of each knob's range), when the space is loaded rather than at sampling."""
    limits = config_cls.model_fields[field].metadata

    def check(value, info: ValidationInfo | None = None):
        values = (
            {"low": value.low, "high": value.high}
            if isinstance(value, Range)
            else ({str(i): v for i, v in enumerate(value)} if isinstance(value, list) else {"": value})
        )
        for where, v in values.items():
            if v is None or not isinstance(v, (int, float)):
                continue
            for rule in limits:
                for attr, op, fails in _RULES:
                    bound = getattr(rule, attr, None)
                    if bound is not None and fails(v, bound):
                        raise ValueError(
                            f"{v}{f' ({where})' if where else ''} is out of range: {field} must be {op} {bound}"
                        )
        return value

    return check


def suggest_knob(trial: optuna.Trial, name: str, knob: Any, *, integer: bool = False) -> Any:
    """The value of ``knob`` for ``trial``: a Range is sampled, a list is a categorical choice (one
    option is used as is, not recorded as a parameter), anything else is fixed."""
    if isinstance(knob, Range):
        if integer:
            return trial.suggest_int(name, int(knob.low), int(knob.high), step=int(knob.step or 1), log=knob.log)
        return trial.suggest_float(name, knob.low, knob.high, step=knob.step, log=knob.log)
    if isinstance(knob, list):
        return pick(trial, name, knob)
    return knob


def pick(trial: optuna.Trial, name: str, options: list):
    """One of ``options``; a single option is used as is and not recorded as a parameter."""
    return options[0] if len(options) == 1 else trial.suggest_categorical(name, options)


__all__ = ["Knob", "Range", "bounds_check", "pick", "suggest_knob"]
