"""How the search went: optimization history, hypervolume over time, and parameter importance."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import optuna
from optuna.trial import TrialState

from autocl.report._trials import DOMINATED, FRONT, StudyData


@dataclass(frozen=True)
class History:
    """Per trial (in trial order): its status and objectives on the profile, the best metric of the
    feasible trials so far, and the hypervolume of the feasible front so far.

    The hypervolume is computed on normalized objectives to minimize: −metric (or metric when lower
    is better), comparable latency / fp32 latency (1 / speed-up, as the front is decided), size /
    fp32 size; the reference point is the worst value of each over all feasible trials and the
    baseline, plus 10% of its range, so every front member adds volume. It never decreases; a flat stretch means trials that did not improve the front.
    """

    trials: tuple[int, ...]
    status: tuple[str, ...]
    metric: tuple[float | None, ...]
    latency_ms: tuple[float | None, ...]
    size_kb: tuple[float | None, ...]
    best_metric: tuple[float | None, ...]
    hypervolume: tuple[float, ...]
    reference_point: tuple[float, ...] = ()


def _normalized_losses(data: StudyData, ts) -> np.ndarray:
    base = data.baseline or {}
    lat_scale = base.get("latency_ms") or 1.0
    size_scale = base.get("size_kb") or 1.0
    sign = -1.0 if data.higher_is_better else 1.0
    return np.array([[sign * t.metric, t.objectives[1] / lat_scale, t.size_kb / size_scale] for t in ts], dtype=float)


def _objective(i: int) -> Callable[[optuna.trial.FrozenTrial], float]:
    """The ``i``-th objective of a trial, as a target of Optuna's importance evaluator."""
    return lambda trial: trial.values[i]


def history(data: StudyData) -> History:
    """The search's progress, trial by trial (see ``History``).

    Args:
        data: The study on one profile.

    Returns:
        Each trial's status and objectives, the best feasible metric so far and the hypervolume of
        the feasible front so far.
    """
    from optuna._hypervolume import compute_hypervolume  # exact WFG; Optuna's own hypervolume plots use it

    ordered = sorted(data.trials, key=lambda t: t.number)
    feasible = [t for t in ordered if t.status in (FRONT, DOMINATED)]
    ref: np.ndarray | None = None
    if feasible:
        losses = _normalized_losses(data, feasible)
        base = data.baseline or {}
        if base.get("metric") is not None and base.get("latency_ms") and base.get("size_kb"):
            sign = -1.0 if data.higher_is_better else 1.0
            losses = np.vstack([losses, [sign * base["metric"], 1.0, 1.0]])
        worst, best = losses.max(axis=0), losses.min(axis=0)
        ref = worst + np.maximum(0.1 * (worst - best), 1e-9)
    best_metric: list[float | None] = []
    hv: list[float] = []
    points: list = []
    current: float | None = None
    volume = 0.0
    for t in ordered:
        if t.status in (FRONT, DOMINATED):
            metric = t.objectives[0]
            if current is None or (metric > current if data.higher_is_better else metric < current):
                current = metric
            points.append(_normalized_losses(data, [t])[0])
            volume = float(compute_hypervolume(np.array(points), ref))  # type: ignore[arg-type]
        best_metric.append(current)
        hv.append(volume)
    return History(
        trials=tuple(t.number for t in ordered),
        status=tuple(t.status for t in ordered),
        metric=tuple(t.metric for t in ordered),
        latency_ms=tuple(t.latency_ms for t in ordered),
        size_kb=tuple(t.size_kb for t in ordered),
        best_metric=tuple(best_metric),
        hypervolume=tuple(hv),
        reference_point=tuple(float(x) for x in ref) if ref is not None else (),
    )


@dataclass(frozen=True)
class Importance:
    """Normalized fANOVA importance of each searched parameter for each objective
    (``values[objective][param]``, summing to 1 per objective); ``note`` says why it is missing."""

    objectives: tuple[str, ...]
    values: dict[str, dict[str, float]] = field(default_factory=dict)
    note: str = ""


MIN_TRIALS_FOR_IMPORTANCE = 4


def param_importances(study: optuna.Study, data: StudyData, *, seed: int = 0) -> Importance:
    """Importance of each parameter for the metric, the latency on ``data.profile`` and the size.

    Computed by Optuna's ``get_param_importances`` (fANOVA, seeded) over the completed trials measured
    on the profile. Parameters that never varied are left out.

    Args:
        study: The study.
        data: The study on one profile.
        seed: The fANOVA evaluator's seed.

    Returns:
        The ``Importance``: per objective, ``{parameter: importance}``, and a note when there were too
        few trials.
    """
    objectives = (data.metric_name, f"latency_ms ({data.profile})", "size_kb")
    measured = {t.number: t for t in data.trials if t.measured and t.size_kb is not None}
    frozen = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.number in measured]
    if len(frozen) < MIN_TRIALS_FOR_IMPORTANCE:
        return Importance(
            objectives,
            note=f"needs at least {MIN_TRIALS_FOR_IMPORTANCE} completed trials measured "
            f"on {data.profile!r} (has {len(frozen)})",
        )
    varied = sorted({p for t in frozen for p in t.params if len({repr(u.params.get(p)) for u in frozen}) > 1})
    common = [p for p in varied if all(p in t.params for t in frozen)]
    if not common:
        return Importance(objectives, note="no parameter varied across the completed trials")
    # a private in-memory copy carrying the profile's latency as the second objective, so trials
    # measured elsewhere or not at all never enter the fit
    copy = optuna.create_study(directions=["minimize"] * 3)
    for t in frozen:
        info = measured[t.number]
        metric, comparable, size = info.objectives
        raw = info.latency_ms if info.latency_ms is not None else comparable
        copy.add_trial(
            optuna.trial.create_trial(
                params={p: t.params[p] for p in common},
                distributions={p: t.distributions[p] for p in common},
                # the raw median: which knobs make the model slower, as the label says
                values=[metric, raw, size],
            )
        )
    values: dict[str, dict[str, float]] = {}
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, name in enumerate(objectives):
            if len({t.values[i] for t in copy.trials}) < 2:  # a constant objective: nothing to explain
                values[name] = {}
                continue
            imp = optuna.importance.get_param_importances(
                copy, evaluator=evaluator, params=common, target=_objective(i)
            )
            values[name] = {p: float(v) for p, v in imp.items()}
    return Importance(objectives, values)


__all__ = ["History", "Importance", "history", "param_importances"]
