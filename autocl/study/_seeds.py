"""Starting a study from another one: ``--fork NEW_NAME`` and ``--warm-start OTHER_STUDY``.

A fork is a new study, made because the old one's settings changed, seeded with every configuration
of the old study that the new search space can still produce. A warm start seeds a study with the
Pareto-front configurations of another study (say, the same model on another device), so a new
target starts from known-good points. Seeded trials run first; ``user_attrs['seeded_from']`` says
where each came from. Both are decided before the workload is loaded (:func:`prepare_run`), and a
mismatched resume is refused there too, before any teacher is trained.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from autocl.errors import StudyError
from autocl.hardware import HardwareProfile
from autocl.space import SearchSpace
from autocl.study._fingerprint import check_fingerprint, check_study_name, fingerprint_changes, study_fingerprint
from autocl.study._front import front_numbers
from autocl.study._study import default_storage, make_storage, sqlite_file
from autocl.study._targets import narrow_space
from autocl.study._teacher import restore_teacher


@dataclass
class Seed:
    """One configuration to enqueue: Optuna parameters, and where they came from."""

    params: dict[str, Any]
    source: dict[str, Any]


@dataclass
class RunPlan:
    """The study this run writes to (a fork's, or the one named) and its storage URL."""

    study_name: str
    url: str
    seeds: list[Seed] = field(default_factory=list)
    restored: list[Path] = field(default_factory=list)


class _Probe:
    """Stands in for an Optuna trial while a search space suggests: answers with an old trial's
    values and records those the space can no longer produce."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.asked: set[str] = set()
        self.invalid: list[str] = []

    def _answer(self, name: str, ok, default):
        self.asked.add(name)
        if name not in self.params:  # a knob the old space did not search: sampled anew
            return default
        if not ok(self.params[name]):
            self.invalid.append(name)
        return self.params[name]

    def suggest_float(self, name, low, high, *, step=None, log=False):
        def ok(v):
            on_grid = step is None or math.isclose(round((v - low) / step) * step + low, v, abs_tol=1e-9)
            return isinstance(v, (int, float)) and low - 1e-12 <= v <= high + 1e-12 and on_grid

        return self._answer(name, ok, low)

    def suggest_int(self, name, low, high, *, step=1, log=False):
        return self._answer(name, lambda v: isinstance(v, int) and low <= v <= high and (v - low) % step == 0, low)

    def suggest_categorical(self, name, choices):
        return self._answer(name, lambda v: v in choices, choices[0])


def still_valid(params: dict[str, Any], space: SearchSpace, layers: list[str]) -> bool:
    """Whether ``space`` can produce the configuration of ``params``: every parameter it had is still
    searched, within the new range or choices (knobs the new space adds are sampled)."""
    probe = _Probe(params)
    try:
        space.suggest(probe, layers)  # type: ignore[arg-type]
    except Exception:  # the old values make an invalid configuration under the new space
        return False
    return not probe.invalid and set(params) <= probe.asked


def _open(name: str, url: str) -> optuna.Study | None:
    """The study if it exists, without creating a database file for nothing."""
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        return None
    storage = make_storage(url)
    if name not in {s.study_name for s in optuna.get_all_study_summaries(storage)}:
        return None
    return optuna.load_study(study_name=name, storage=storage)


def fork_seeds(old: optuna.Study, space: SearchSpace) -> list[Seed]:
    layers = old.user_attrs.get("workload", {}).get("layers", [])
    seeds, seen = [], []
    for t in old.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if t.params and t.params not in seen and still_valid(t.params, space, layers):
            seen.append(t.params)
            seeds.append(Seed(dict(t.params), {"study": old.study_name, "trial": t.number, "why": "fork"}))
    return seeds


def warm_start_seeds(other: optuna.Study, url: str, space: SearchSpace) -> list[Seed]:
    """The other study's front configurations (every profile's front, read from its record) that
    ``space`` can produce."""
    layers = other.user_attrs.get("workload", {}).get("layers", [])
    members = sorted(front_numbers(other))
    trials = {t.number: t for t in other.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    return [
        Seed(dict(trials[n].params), {"study": other.study_name, "trial": n, "why": "warm start"})
        for n in members
        if n in trials and trials[n].params and still_valid(trials[n].params, space, layers)
    ]


def enqueue_seeds(study: optuna.Study, seeds: Sequence[Seed]) -> int:
    """Enqueue ``seeds`` (skipping configurations the study already has); returns how many."""
    before = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    for seed in seeds:
        study.enqueue_trial(seed.params, user_attrs={"seeded_from": seed.source}, skip_if_exists=True)
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,))) - before


def prepare_run(
    study_name: str,
    url: str,
    workload_name: str,
    space: SearchSpace,
    profiles: Sequence[HardwareProfile],
    *,
    fork: str | None = None,
    warm_start: str | None = None,
    storage_given: bool = True,
) -> RunPlan:
    """Everything decided before the workload is loaded.

    Names are checked; resuming an existing study whose workload, space or profile contents changed
    is refused (or, with ``fork``, a new study is planned, seeded with the old one's still-valid
    configurations); the study's teacher copy is restored to the cache; ``warm_start`` adds another
    study's front configurations.

    Args:
        study_name: The study to run (or, with ``fork``, the one to fork from).
        url: Its database URL.
        workload_name: The workload's name.
        space: The search space (narrowed here to the precisions the profiles run).
        profiles: The hardware profiles.
        fork: The name of a new study to create from ``study_name``.
        warm_start: The name of a study of the same workload whose front configurations are enqueued.
        storage_given: Whether ``url`` was given; if not, ``fork`` and ``warm_start`` studies are looked
            for in their own default databases.

    Returns:
        The ``RunPlan``: the study to write to and its URL, the seeds to enqueue and the teacher files
        restored.

    Raises:
        StudyError: A name is not allowed, the fingerprint changed (without ``fork``), there is no study
            to fork or the fork's name is taken, or the ``warm_start`` study is missing or of another
            workload.
        ConfigError: None of the space's precisions is run by the profiles.
    """
    check_study_name(study_name)
    space = narrow_space(space, list(profiles))
    new = study_fingerprint(workload_name, None, space, profiles)
    plan = RunPlan(study_name, url)
    old = _open(study_name, url)
    stored = old.user_attrs.get("fingerprint") if old is not None else None
    if fork:
        check_study_name(fork)
        if old is None:
            raise StudyError(f"--fork: there is no study {study_name!r} in {url} to fork; run without --fork")
        fork_url = url if storage_given else default_storage(fork)
        if _open(fork, fork_url) is not None:
            raise StudyError(
                f"--fork: a study named {fork!r} already exists in {fork_url}; resume it with --study "
                f"{fork}, or fork under another name"
            )
        plan.study_name, plan.url = fork, fork_url
        if stored and stored.get("workload") == workload_name:
            plan.seeds = fork_seeds(old, space)
    elif stored:
        check_fingerprint(study_name, url, stored, new)
    if old is not None and stored and stored.get("workload") == workload_name:
        plan.restored = restore_teacher(url, study_name)
    if warm_start:
        check_study_name(warm_start)
        other_url = url if storage_given else default_storage(warm_start)
        other = _open(warm_start, other_url)
        if other is None:
            raise StudyError(f"--warm-start: no study named {warm_start!r} in {other_url}")
        other_fp = other.user_attrs.get("fingerprint") or {}
        if other_fp.get("workload") != workload_name:
            raise StudyError(
                f"--warm-start: study {warm_start!r} is of workload {other_fp.get('workload')!r}, not "
                f"{workload_name!r}; its configurations name another model's layers"
            )
        plan.seeds += warm_start_seeds(other, other_url, space)
    return plan


__all__ = ["RunPlan", "Seed", "enqueue_seeds", "fingerprint_changes", "prepare_run", "still_valid"]
