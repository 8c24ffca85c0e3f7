"""Cross-target regret: what shipping one target's winner to another target costs.

For each profile a study was searched on, its *winner* is the fastest member of that profile's front
(by the comparable speed-up of the study record) whose metric drop is within the bound (the study's
``max_drop``, or one given). Each winner's speed-up over fp32 on every profile is then taken either
from the record (measured in its trial, in alternation with the baseline) or measured again: all
winners and the fp32 baseline interleaved in one run per profile, so the numbers compared on one
target come from the same rounds. The regret of shipping the winner of ``S`` to target ``T`` is the
share of ``T``'s best speed-up it gives up: ``1 - speedup_T(winner_S) / speedup_T(winner_T)``
(0: the same choice, or as fast). When measuring, every winner's metric is also computed through
each target's own runtime (``autocl.evaluate`` on the artifact), so a runtime that changes the
outputs shows up as a metric drop on that target rather than being assumed away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import optuna

from autocl.compress import Compressor
from autocl.errors import StudyError
from autocl.evaluate import evaluate_artifact, metric_drop
from autocl.hardware import HardwareProfile, measure_many
from autocl.runtime import cache_dir
from autocl.study._baselines import measured_profiles, study_baseline
from autocl.study._record import FRONT, TrialRecord, read_trials, speedup
from autocl.study._remeasure import _artifact
from autocl.workloads import Workload


@dataclass(frozen=True)
class Winner:
    """A target's fastest front member within the metric bound."""

    profile: str
    trial: int
    bits: str
    metric_drop: float | None
    speedup: float | None  # on its own target, as the record has it


@dataclass(frozen=True)
class CrossTargets:
    """Every winner's speed-up on every target, and what shipping it elsewhere costs.

    ``speedups[target][source]`` is the speed-up over fp32 on ``target`` of ``source``'s winner;
    ``drops[target][source]`` its metric drop computed through ``target``'s runtime (measured runs
    only); ``how`` says whether the speed-ups are the record's or measured now.
    """

    study: str
    max_drop: float | None
    winners: dict[str, Winner]
    speedups: dict[str, dict[str, float | None]]
    drops: dict[str, dict[str, float | None]] = field(default_factory=dict)
    how: str = "recorded"
    load_1m: dict[str, float | None] = field(default_factory=dict)

    def regret(self, target: str, source: str) -> float | None:
        """``1 - speedup_target(winner_source) / speedup_target(winner_target)``, or None without both."""
        own, other = self.speedups[target].get(target), self.speedups[target].get(source)
        if own is None or other is None or not own > 0:
            return None
        return 1 - other / own

    def to_dict(self) -> dict:
        """Everything as JSON-ready data, regrets included."""
        return {
            "study": self.study,
            "max_drop": self.max_drop,
            "how": self.how,
            "winners": {k: vars(w) for k, w in self.winners.items()},
            "speedups": self.speedups,
            "drops": self.drops,
            "regret": {t: {s: self.regret(t, s) for s in self.winners} for t in self.winners},
            "load_1m": self.load_1m,
        }


def _winner(records: list[TrialRecord], profile: str, max_drop: float | None) -> Winner | None:
    ok = [
        r
        for r in records
        if r.status == FRONT
        and r.speedup is not None
        and (max_drop is None or (r.metric_drop is not None and r.metric_drop <= max_drop + 1e-12))
    ]
    if not ok:
        return None
    best = max(ok, key=lambda r: (r.speedup or 0.0, -r.number))
    return Winner(profile, best.number, best.bits, best.metric_drop, best.speedup)


def cross_targets(
    study: optuna.Study,
    *,
    max_drop: float | None = None,
    profiles: list[HardwareProfile] | None = None,
    workload: Workload | None = None,
    compressor: Compressor | None = None,
) -> CrossTargets:
    """Each profile's winner and its speed-up on every profile.

    Args:
        study: A study searched on two or more profiles.
        max_drop: The metric bound (default: the study's ``max_drop``; none: the fastest front member).
        profiles: The study's profiles, to measure the winners on now; None: use the record's numbers.
        workload: The study's workload (needed to measure).
        compressor: Finds or rebuilds the artifacts (default: one on the artifact cache).

    Returns:
        The cross-target table.

    Raises:
        StudyError: The study was measured on fewer than two profiles, or a profile has no front member
            within the bound.
    """
    names = measured_profiles(study)
    if len(names) < 2:
        raise StudyError(
            f"study {study.study_name!r} was measured on {len(names)} profile(s) ({', '.join(names) or 'none'}): "
            "search with --profile given once per target, e.g. --profile cpu-local --profile cpu-openvino"
        )
    stored = study.user_attrs.get("max_drop")
    bound = max_drop if max_drop is not None else (float(stored) if isinstance(stored, (int, float)) else None)
    records = {p: read_trials(study, p) for p in names}
    winners: dict[str, Winner] = {}
    for p in names:
        w = _winner(records[p], p, bound)
        if w is None:
            within = "" if bound is None else f" within a metric drop of {bound:g}"
            raise StudyError(
                f"profile {p!r} of study {study.study_name!r} has no measured front member{within}; "
                "run more trials or pass a looser --max-drop"
            )
        winners[p] = w
    if profiles is None:
        by_number = {p: {r.number: r for r in records[p]} for p in names}
        speedups = {t: {s: by_number[t][w.trial].speedup for s, w in winners.items()} for t in names}
        return CrossTargets(study.study_name, bound, winners, speedups)
    if workload is None:
        raise ValueError("measuring the winners needs the study's workload")
    return _measured(study, bound, winners, profiles, workload, compressor or Compressor(workload, cache_dir()))


def _measured(
    study: optuna.Study,
    bound: float | None,
    winners: dict[str, Winner],
    profiles: list[HardwareProfile],
    workload: Workload,
    compressor: Compressor,
) -> CrossTargets:
    by_name = {p.name: p for p in profiles}
    missing = [n for n in winners if n not in by_name]
    if missing:
        raise StudyError(f"no profile settings for {', '.join(missing)}: the study stores them, pass --profile FILE")
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    sources = list(winners)
    numbers = list(dict.fromkeys(winners[s].trial for s in sources))  # one winner may win on two targets
    paths = {n: _artifact(trials[n], compressor)[0] for n in numbers}
    baseline = compressor.baseline()
    speedups: dict[str, dict[str, float | None]] = {}
    drops: dict[str, dict[str, float | None]] = {}
    load: dict[str, float | None] = {}
    higher = workload.higher_is_better
    for t in sources:
        p = by_name[t]
        *ms, base = measure_many(
            [paths[n] for n in numbers] + [baseline], p, workload.sample_feed(p.batch_size), memory=False
        )
        by_trial = dict(zip(numbers, ms, strict=True))
        speedups[t] = {s: speedup(base.median_ms, by_trial[winners[s].trial].median_ms) for s in sources}
        load[t] = base.load_1m
        ref = evaluate_artifact(baseline, workload, p)
        if math.isnan(ref):
            ref = float((study_baseline(study, t) or {}).get("metric", math.nan))
        metrics = {n: evaluate_artifact(paths[n], workload, p) for n in numbers}
        drops[t] = {
            s: None
            if math.isnan(metrics[winners[s].trial])
            else round(metric_drop(metrics[winners[s].trial], ref, higher), 6)
            for s in sources
        }
    return CrossTargets(study.study_name, bound, winners, speedups, drops, "measured", load)


__all__ = ["CrossTargets", "Winner", "cross_targets"]
