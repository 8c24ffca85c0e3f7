"""Which members get the long distillation ("polish"), and the metric-drop constraint.

Screening distils every pruned student briefly; a polishing round takes the fastest pruned members
on or near the front whose screened metric drop (:func:`autocl.evaluate.metric_drop`) is within ``polish.window`` and enqueues
them again, marked ``polish_of``, so the objective rebuilds their student with the long schedule of
:meth:`autocl.space.SearchSpace.polished`. The screened trial and its polished twin are both kept:
the front, computed over all trials, shows whichever dominates.
"""

from __future__ import annotations

import optuna

from autocl.evaluate import metric_drop
from autocl.study._claims import claim
from autocl.study._record import dominates

COMPLETE = optuna.trial.TrialState.COMPLETE


def polish_candidates(
    study: optuna.Study, *, baseline: float, higher_is_better: bool, window: float, members: int
) -> list[optuna.trial.FrozenTrial]:
    """Up to ``members`` screened, distilled, not yet polished trials: the non-dominated ones on
    (metric, latency) first, fastest first, then the next layer of the front, and so on. One trial
    per student in a round; the others of a polished student follow in later rounds at little cost,
    since they reuse the polished student."""
    trials = study.get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}
    twins = [t for t in trials if "polish_of" in t.user_attrs]
    taken = {t.user_attrs["polish_of"] for t in twins}
    busy = {
        by_number[t.user_attrs["polish_of"]].user_attrs.get("student_key")
        for t in twins
        if not t.state.is_finished() and t.user_attrs["polish_of"] in by_number
    }
    pool = [
        t
        for t in trials
        if t.state == COMPLETE
        and t.user_attrs.get("distilled")
        and "polish_of" not in t.user_attrs
        and t.number not in taken
        and metric_drop(t.values[0], baseline, higher_is_better) <= window
    ]
    sign = -1.0 if higher_is_better else 1.0
    points = {t.number: (sign * t.values[0], t.values[1]) for t in pool}
    chosen: list[optuna.trial.FrozenTrial] = []
    students: set[str | None] = set()
    while pool and len(chosen) < members:
        layer = [t for t in pool if not any(dominates(points[o.number], points[t.number]) for o in pool)]
        for t in sorted(layer, key=lambda t: t.values[1]):
            key = t.user_attrs.get("student_key")
            if len(chosen) < members and key not in busy and key not in students:
                chosen.append(t)
                students.add(key)
        pool = [t for t in pool if t not in layer]
    return chosen


def enqueue_polish(study: optuna.Study, trials: list[optuna.trial.FrozenTrial], url: str | None = None) -> int:
    """Enqueue the polished twin of each trial (same parameters, ``polish_of`` set); returns how many.
    With the study's ``url``, a twin is enqueued only by the worker that claims it first (workers
    polishing at once pick the same members)."""
    mine = [t for t in trials if url is None or claim(url, study, f"polish:{t.number}")]
    for t in mine:
        study.enqueue_trial(dict(t.params), user_attrs={"polish_of": t.number})
    return len(mine)


__all__ = ["enqueue_polish", "polish_candidates"]
