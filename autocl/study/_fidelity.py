"""The fidelity ladder's promotion rule: asynchronous successive halving (ASHA) on two objectives.

A distilled student is screened at the ladder's first rung (``distill.fidelity.rungs[0]`` steps).
Whenever a trial finishes, every rung is looked at: of the trials that reached rung ``k``, the top
``floor(n / eta)`` are promotable, and each promotable one not yet promoted gets a twin trial
enqueued (same parameters, ``rung_of`` and ``rung`` set), which resumes its student from the rung's
checkpoint to the next rung. Nobody waits for a rung to fill (Li et al., MLSys 2020): a rung
promotes as soon as it has ``eta`` trials, and an enqueued twin runs before any new sample.

Optuna's own ``SuccessiveHalvingPruner`` cannot serve: ``trial.report`` refuses multi-objective
studies, and it promotes the best of a rung's first ``eta - 1`` trials because an Optuna trial
cannot be suspended and resumed; an autocl student can (its checkpoint), so only the true top
``1/eta`` goes on. "Top" is ranked as polishing ranks: non-dominated layers on (metric, latency),
fastest first within a layer, so a fast pruned student that recovers slowly competes with students
of its own cost, not with the unpruned model. The metric is the rung's, on held-out *training*
rows (``user_attrs['fidelity']['metric']``), never the validation split the front is judged on.
"""

from __future__ import annotations

import optuna

from autocl.study._claims import claim
from autocl.study._record import dominates

COMPLETE = optuna.trial.TrialState.COMPLETE


def rung_of(trial: optuna.trial.FrozenTrial) -> int | None:
    """The ladder rung a completed trial reached, or None when it is not on a ladder.

    Args:
        trial: The trial.

    Returns:
        The rung's index (0: screened).
    """
    fid = trial.user_attrs.get("fidelity")
    return int(fid["rung"]) if isinstance(fid, dict) and "rung" in fid else None


def ranked(trials: list[optuna.trial.FrozenTrial], higher_is_better: bool) -> list[optuna.trial.FrozenTrial]:
    """``trials`` best first: non-dominated layers on (rung metric, latency), fastest first in a layer.

    Ties on latency go to the better metric, then to the earlier trial, so the order is stable.

    Args:
        trials: Completed trials of one rung.
        higher_is_better: Whether a higher metric is better.

    Returns:
        The trials in rank order.
    """
    sign = -1.0 if higher_is_better else 1.0
    points = {t.number: (sign * float(t.user_attrs["fidelity"]["metric"]), float(t.values[1])) for t in trials}
    pool, out = list(trials), []
    while pool:
        layer = [t for t in pool if not any(dominates(points[o.number], points[t.number]) for o in pool)]
        out += sorted(layer, key=lambda t: (points[t.number][1], points[t.number][0], t.number))
        pool = [t for t in pool if t not in layer]
    return out


def promotions(study: optuna.Study, *, eta: int, rungs: int, higher_is_better: bool) -> list[optuna.trial.FrozenTrial]:
    """The trials to promote now, highest rung first (ASHA looks at the top rung first).

    At rung ``k`` (below the last), the first ``floor(n / eta)`` of :func:`ranked` over the ``n``
    completed trials at ``k`` are promotable; those not yet promoted, and whose student is not
    promoted from that rung already (trials differing only in precision share a student), are returned.

    Args:
        study: The study.
        eta: The reduction factor.
        rungs: How many rungs the ladder has.
        higher_is_better: Whether a higher metric is better.

    Returns:
        The trials whose twins to enqueue.
    """
    trials = study.get_trials(deepcopy=False)
    promoted = {t.user_attrs["rung_of"] for t in trials if "rung_of" in t.user_attrs}
    by_number = {t.number: t for t in trials}
    out: list[optuna.trial.FrozenTrial] = []
    for k in reversed(range(rungs - 1)):
        at = [t for t in trials if t.state == COMPLETE and rung_of(t) == k and t.values]
        done = {
            by_number[n].user_attrs.get("student_key")
            for n in promoted
            if n in by_number and rung_of(by_number[n]) == k
        }
        for t in ranked(at, higher_is_better)[: len(at) // eta]:
            key = t.user_attrs.get("student_key")
            if t.number not in promoted and key not in done:
                out.append(t)
                done.add(key)
    return out


def enqueue_promotions(study: optuna.Study, trials: list[optuna.trial.FrozenTrial], url: str | None = None) -> int:
    """Enqueue each trial's twin at the next rung; returns how many. With the study's ``url``, a
    twin is enqueued only by the worker that claims it first (workers finishing at once see the
    same promotions).

    Args:
        study: The study.
        trials: What :func:`promotions` returned.
        url: The study's storage URL (None: no other worker).

    Returns:
        How many twins this process enqueued.
    """
    mine = [t for t in trials if url is None or claim(url, study, f"rung:{t.number}")]
    for t in mine:
        rung = rung_of(t)
        assert rung is not None  # promotions() takes ladder trials only
        study.enqueue_trial(dict(t.params), user_attrs={"rung_of": t.number, "rung": rung + 1})
    return len(mine)


__all__ = ["enqueue_promotions", "promotions", "ranked", "rung_of"]
