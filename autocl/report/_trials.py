"""Plain data about a study, read-only: every trial classified on one profile, and the feasible front.

A trial is, on the chosen profile, exactly one of:

* ``front``: completed, feasible (every constraint ≤ 0, or none stored), measured on the profile, and
  not dominated on (metric, comparable latency on the profile, size) by another such trial (the
  comparable latency: the study's fp32 baseline over the speed-up measured side by side with fp32,
  ``TrialRecord.normalized_ms``);
* ``dominated``: the same, but another feasible trial is at least as good on all three objectives and
  better on one (the reason names it);
* ``infeasible``: completed but a constraint (a budget) is violated, as Optuna records it
  (``FrozenTrial.constraints``: the ``system_attrs['constraints']`` list or named constraints; > 0
  violates); the reason gives the values;
* ``unmeasured``: completed but never measured on this profile;
* ``failed``: failed, with the error the trial stored;
* ``pending``: running, queued or pruned.

The front is computed here from the trials themselves, so every number shown traces to a trial row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import optuna

from autocl.errors import StudyError
from autocl.evaluate import metric_drop
from autocl.study._baselines import measured_profiles, primary_profile, profile_settings, study_baseline
from autocl.study._record import (
    DOMINATED,
    FAILED,
    FRONT,
    INFEASIBLE,
    PENDING,
    STATUSES,
    UNMEASURED,
    TrialRecord,
    dominates,
    losses,
    read_trials,
)

TrialInfo = TrialRecord
"""One trial as the report, the front and the picks see it: the study record's reader
(:class:`autocl.study._record.TrialRecord`), with latency on ``StudyData.profile``."""


@dataclass(frozen=True)
class StudyData:
    """A study seen on one profile: its trials classified, its baseline and its layers."""

    study_name: str
    profile: str
    profiles: tuple[str, ...]
    metric_name: str
    higher_is_better: bool
    layers: tuple[str, ...]
    baseline: dict | None
    trials: tuple[TrialInfo, ...]
    layer_choices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sensitivity: dict | None = None
    narrowed: dict | None = None  # precisions the profiles removed from the space, and why (run_search)
    workload: dict = field(default_factory=dict)
    fingerprint: dict = field(default_factory=dict)
    profile_settings: dict | None = None
    constraint_names: tuple[str, ...] = ()

    @property
    def front(self) -> list[TrialInfo]:
        """The feasible Pareto front on this profile, fastest first by the comparable latency
        (``TrialRecord.normalized_ms``: the best speed-up first), not by raw milliseconds."""
        return sorted(self.with_status(FRONT), key=lambda t: (t.objectives[1], t.number))

    def with_status(self, *statuses: str) -> list[TrialInfo]:
        """The trials with one of ``statuses``.

        Args:
            *statuses: Statuses (see ``STATUSES``).

        Returns:
            The trials, in trial order.
        """
        return [t for t in self.trials if t.status in statuses]

    def trial(self, number: int) -> TrialInfo:
        """The trial numbered ``number``.

        Args:
            number: The trial number.

        Returns:
            The trial.

        Raises:
            StudyError: The study has no such trial.
        """
        for t in self.trials:
            if t.number == number:
                return t
        raise StudyError(
            f"study {self.study_name!r} has no trial {number} (trials: 0-{len(self.trials) - 1}); "
            "'autocl front' lists the front's trial numbers"
        )

    def metric_drop(self, t: TrialInfo) -> float | None:
        """How much worse than the fp32 teacher ``t``'s metric is (positive = worse).

        Args:
            t: A trial of this study.

        Returns:
            The metric drop (see :func:`autocl.evaluate.metric_drop`), or None when the trial has no
            metric or the study no fp32 baseline.
        """
        if t.metric is None or not self.baseline or self.baseline.get("metric") is None:
            return None
        return metric_drop(t.metric, self.baseline["metric"], self.higher_is_better)

    def speedup(self, t: TrialInfo) -> float | None:
        """The comparable speed-up (``TrialRecord.speedup``): re-measured when the front was, else the
        one measured in the trial, both in alternation with fp32.

        Args:
            t: A trial of this study.

        Returns:
            The speed-up, or None when it was not measured.
        """
        return t.speedup

    def losses(self, t: TrialInfo) -> tuple[float, float, float]:
        """Objectives as values to minimize.

        Args:
            t: A trial of this study.

        Returns:
            ``(-metric or metric, comparable latency, size)``: the metric negated when higher is better
            (:func:`autocl.study._record.losses`).
        """
        return losses(t, self.higher_is_better)


def study_data(study: optuna.Study, profile: str | None = None) -> StudyData:
    """Classify every trial of ``study`` on ``profile``.

    Args:
        study: The study.
        profile: The hardware profile (default: the search's primary profile).

    Returns:
        The ``StudyData``: the trials with their status, and the study's settings on ``profile``.

    Raises:
        StudyError: The study has no measurement on ``profile``.
    """
    profiles = measured_profiles(study)
    profile = profile or primary_profile(study) or (profiles[0] if profiles else "")
    if profiles and profile not in profiles:
        raise StudyError(
            f"study {study.study_name!r} has no measurement on profile {profile!r}; "
            f"its trials were measured on: {', '.join(profiles)} (pass one of them as --profile)"
        )
    wl = study.user_attrs.get("workload") or {}
    names = tuple(study.user_attrs.get("constraint_names") or ())
    baseline = study_baseline(study, profile)
    trials = read_trials(study, profile)
    choices: dict[str, tuple[str, ...]] = {}
    for t in study.get_trials(deepcopy=False):
        for name, dist in t.distributions.items():
            if name.startswith("bits.") and hasattr(dist, "choices"):
                layer = name[len("bits.") :]
                choices[layer] = tuple(dict.fromkeys(choices.get(layer, ()) + tuple(map(str, dist.choices))))
    return StudyData(
        study_name=study.study_name,
        profile=profile,
        profiles=tuple(profiles),
        metric_name=wl.get("metric", "metric"),
        higher_is_better=bool(wl.get("higher_is_better", True)),
        layers=tuple(wl.get("layers") or ()),
        baseline=baseline,
        trials=tuple(trials),
        layer_choices=choices,
        sensitivity=study.user_attrs.get("sensitivity"),
        narrowed=study.user_attrs.get("narrowed"),
        workload=dict(wl),
        fingerprint=dict(study.user_attrs.get("fingerprint") or {}),
        profile_settings=profile_settings(study, profile),
        constraint_names=names,
    )


@dataclass(frozen=True)
class LearningCurve:
    """One fidelity-ladder student's metric on held-out training rows against distillation steps,
    from step 0 (after adaptive batch norm) to the rung it reached (``trial``: the trial there)."""

    trial: int
    steps: tuple[int, ...]
    metric: tuple[float, ...]
    stopped: bool
    on_front: bool
    prune_ratio: float | None
    latency_ms: float | None


def learning_curves(data: StudyData) -> list[LearningCurve]:
    """The learning curves of a study's ladder students: one per student, at the furthest rung it reached.

    A promoted trial's curve continues in its twin's, so only trials not promoted further are drawn;
    trials sharing a student (differing only in precision) share its curve, drawn once.

    Args:
        data: The study on one profile.

    Returns:
        The curves, in trial order (empty when the study has no fidelity ladder).
    """
    out = []
    seen = {t.student_key for t in data.trials if t.promoted}  # their curves go on in their twins'
    for t in data.trials:
        if not t.curve or t.promoted or t.student_key in seen:
            continue
        seen.add(t.student_key)
        out.append(
            LearningCurve(
                trial=t.number,
                steps=tuple(x for x, _ in t.curve),
                metric=tuple(y for _, y in t.curve),
                stopped=t.stopped,
                on_front=t.status == FRONT,
                prune_ratio=t.prune_ratio,
                latency_ms=t.latency_ms,
            )
        )
    return out


def require_front(data: StudyData) -> list[TrialInfo]:
    """The feasible front of ``data``, checked to be non-empty.

    Args:
        data: The study on one profile.

    Returns:
        The front members.

    Raises:
        StudyError: There is no front; it says why (empty study, all failed, all infeasible).
    """
    front = data.front
    if front:
        return front
    n = len(data.trials)
    if n == 0:
        raise StudyError(
            f"study {data.study_name!r} has no trials yet; run 'autocl search --study {data.study_name}' first"
        )
    failed = data.with_status(FAILED)
    parts = [f"{len(failed)} failed"] if failed else []
    for status in (INFEASIBLE, UNMEASURED, PENDING):
        if data.with_status(status):
            parts.append(f"{len(data.with_status(status))} {status}")
    example = ""
    if failed:
        example = f"; first failure: {failed[0].reason}"
    elif data.with_status(INFEASIBLE):
        t = data.with_status(INFEASIBLE)[0]
        example = f"; trial {t.number}: {t.reason}"
    raise StudyError(
        f"study {data.study_name!r} has no feasible completed trial on profile {data.profile!r}, so no "
        f"Pareto front ({n} trial(s): {', '.join(parts)}){example}. Fix the cause and run "
        "'autocl search' again (finished trials are kept)"
    )


__all__ = [
    "DOMINATED",
    "FAILED",
    "FRONT",
    "INFEASIBLE",
    "PENDING",
    "STATUSES",
    "UNMEASURED",
    "LearningCurve",
    "StudyData",
    "TrialInfo",
    "dominates",
    "learning_curves",
    "measured_profiles",
    "primary_profile",
    "require_front",
    "study_data",
]
