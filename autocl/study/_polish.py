"""Which members get the long distillation ("polish"), and the metric-drop constraint.

Screening distils every pruned student briefly; a polishing round takes the fastest pruned members
(by the study record's comparable speed-up) on or near the front whose screened metric drop (:func:`autocl.evaluate.metric_drop`) is within ``polish.window`` and enqueues
them again, marked ``polish_of``, so the objective rebuilds their student with the long schedule of
:meth:`autocl.space.SearchSpace.polished`. The screened trial and its polished twin are both kept:
the front, computed over all trials, shows whichever dominates.
"""

from __future__ import annotations

import optuna

from autocl.study._claims import claim
from autocl.study._record import DOMINATED, FRONT, INFEASIBLE, losses, pareto_members, read_trials


def polish_candidates(
    study: optuna.Study, *, profile: str, baseline: float, higher_is_better: bool, window: float, members: int
) -> list[optuna.trial.FrozenTrial]:
    """Up to ``members`` screened, distilled, not yet polished trials, read through the study record
    on ``profile`` (the primary): the non-dominated ones first (the record's dominance, on its
    comparable latency), best speed-up first, then the next layer, and so on. One trial per student
    in a round; the others of a polished student follow in later rounds at little cost, since they
    reuse the polished student."""
    trials = study.get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}
    twins = [t for t in trials if "polish_of" in t.user_attrs]
    taken = {t.user_attrs["polish_of"] for t in twins}
    busy = {
        by_number[t.user_attrs["polish_of"]].user_attrs.get("student_key")
        for t in twins
        if not t.state.is_finished() and t.user_attrs["polish_of"] in by_number
    }
    records = {
        r.number: r
        for r in read_trials(study, profile, baseline_metric=baseline)
        # infeasible too: a screened metric drop over --max-drop is what polishing can bring back
        if r.status in (FRONT, DOMINATED, INFEASIBLE)
        and r.measured
        and r.size_kb is not None
        and r.distilled
        and r.polish_of is None
        and r.number not in taken
        and r.metric_drop is not None
        and r.metric_drop <= window
    }
    pool = [by_number[n] for n in records]
    points = {n: losses(r, higher_is_better) for n, r in records.items()}
    chosen: list[optuna.trial.FrozenTrial] = []
    students: set[str | None] = set()
    while pool and len(chosen) < members:
        front = pareto_members({t.number: points[t.number] for t in pool})
        layer = [t for t in pool if t.number in front]
        for t in sorted(layer, key=lambda t: (points[t.number][1], t.number)):
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
