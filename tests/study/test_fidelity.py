"""The fidelity ladder in a search: ASHA's promotion rule on two objectives, resume, never retrain."""

from __future__ import annotations

import optuna
import pytest

from autocl.space import SearchSpace
from autocl.study import run_search
from autocl.study._fidelity import enqueue_promotions, promotions, ranked, rung_of

COMPLETE = optuna.trial.TrialState.COMPLETE
WAITING = optuna.trial.TrialState.WAITING


def _study(points, rung=0):
    """A study of completed trials at ``rung``: (held-out metric, latency ms, student key)."""
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    for i, (metric, ms, key) in enumerate(points):
        study.add_trial(
            optuna.trial.create_trial(
                params={"x": float(i)},
                distributions={"x": optuna.distributions.FloatDistribution(0, 100)},
                values=[0.5, ms, 1.0],
                user_attrs={"fidelity": {"rung": rung, "metric": metric, "steps": 10}, "student_key": key},
            )
        )
    return study


def test_fewer_than_eta_students_at_a_rung_promote_nobody():
    assert promotions(_study([(0.9, 1.0, "a"), (0.8, 2.0, "b")]), eta=3, rungs=3, higher_is_better=True) == []


def test_the_top_third_goes_on_ranked_in_non_dominated_layers_fastest_first():
    # a slow accurate student and a fast inaccurate one are both on the first layer: the fast one leads
    pts = [
        (0.99, 9.0, "slow"),
        (0.60, 1.0, "fast"),
        (0.50, 5.0, "bad"),
        (0.70, 3.0, "mid"),
        (0.40, 8.0, "worse"),
        (0.30, 9.5, "worst"),
    ]
    study = _study(pts)
    order = [t.user_attrs["student_key"] for t in ranked(study.trials, True)]
    assert order[:4] == ["fast", "mid", "slow", "bad"]
    chosen = promotions(study, eta=3, rungs=3, higher_is_better=True)
    assert [t.user_attrs["student_key"] for t in chosen] == ["fast", "mid"]  # floor(6 / 3)
    # lower is better: the ranking turns around on the metric
    low = [t.user_attrs["student_key"] for t in ranked(study.trials, False)]
    assert low[0] == "fast" and low.index("worst") < low.index("slow")


def test_a_promotion_is_enqueued_once_and_a_shared_student_goes_on_once():
    study = _study([(0.9, 1.0, "s"), (0.9, 1.1, "s"), (0.5, 2.0, "t"), (0.4, 3.0, "u")])
    chosen = promotions(study, eta=2, rungs=2, higher_is_better=True)
    assert [t.number for t in chosen] == [0]  # trial 1 shares trial 0's student
    assert enqueue_promotions(study, chosen) == 1
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert (
        waiting[0].user_attrs == {"rung_of": 0, "rung": 1}
        and waiting[0].system_attrs["fixed_params"] == study.trials[0].params
    )
    assert promotions(study, eta=2, rungs=2, higher_is_better=True) == []  # already promoted
    # the last rung promotes nobody
    assert promotions(_study([(0.9, 1.0, "a"), (0.8, 2.0, "b")], rung=1), eta=2, rungs=2, higher_is_better=True) == []
    assert rung_of(study.trials[0]) == 0 and rung_of(waiting[0]) is None


LADDER = {
    "name": "ladder",
    "prune": {"ratio": [0.3, 0.5, 0.7]},
    "distill": {
        "temperature": [2.0, 4.0],
        "alpha": 0.5,
        "steps": 8,
        "batch_size": 32,
        "lr": 0.003,
        "fidelity": {"rungs": [3, 9], "eta": 2},
    },
    "quant": {"precisions": ["fp32"], "calibration_samples": 32},
}


@pytest.fixture(scope="module")
def ladder_study(digits, fast_profile, tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('ladder') / 'study.db'}"
    space = SearchSpace.model_validate(LADDER)
    result = run_search(
        digits,
        space,
        fast_profile,
        study_name="ladder",
        storage=url,
        n_trials=6,
        remeasure=False,
        recipes=False,
        sensitivity=False,
    )
    return result, space, url


def test_students_climb_the_ladder_resuming_from_their_checkpoint(ladder_study):
    result, _, _ = ladder_study
    trials = [t for t in result.study.trials if t.state != WAITING]
    assert all(t.state == COMPLETE for t in trials)
    # a promotion enqueued by the last trial waits for the next run, and names its parent
    assert all("rung_of" in t.user_attrs for t in result.study.trials if t.state == WAITING)
    top = [t for t in trials if rung_of(t) == 1]
    assert top, "with eta 2 and 6 trials, at least one student is promoted"
    for t in top:
        fid, parent = t.user_attrs["fidelity"], trials[t.user_attrs["rung_of"]]
        assert rung_of(parent) == 0 and parent.params == t.params
        assert fid["steps"] == 9 and fid["resumed_from"] == 3 and [s for s, _ in fid["curve"]] == [0, 3, 9]
        assert fid["curve"][:2] == parent.user_attrs["fidelity"]["curve"]
        assert t.user_attrs["config"]["distill"]["steps"] == 9
    # a stopped student stays at its rung with its metric and learning curve
    stopped = [
        t for t in trials if rung_of(t) == 0 and not any(o.user_attrs.get("rung_of") == t.number for o in trials)
    ]
    assert stopped and all(len(t.user_attrs["fidelity"]["curve"]) == 2 for t in stopped)


def test_a_resumed_study_keeps_promoting_without_retraining(ladder_study, digits, fast_profile):
    result, space, url = ladder_study
    before = len([t for t in result.study.trials if t.state == COMPLETE])
    again = run_search(
        digits,
        SearchSpace.model_validate(LADDER),
        fast_profile,
        study_name="ladder",
        storage=url,
        n_trials=4,
        remeasure=False,
        recipes=False,
        sensitivity=False,
    )
    trials = again.study.trials
    done = [t for t in trials if t.state == COMPLETE]
    assert len(done) >= before + 4 and all(t.state in (COMPLETE, WAITING) for t in trials)
    top = [t for t in trials[before:] if rung_of(t) == 1]
    assert all(t.user_attrs["fidelity"]["resumed_from"] == 3 for t in top)


def test_workers_finishing_at_once_enqueue_a_promotion_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'workers.db'}"
    source = _study([(0.9, 1.0, "a"), (0.5, 2.0, "b"), (0.4, 3.0, "c")])
    study = optuna.create_study(study_name="w", storage=url, directions=["maximize", "minimize", "minimize"])
    for t in source.trials:
        study.add_trial(t)
    other = optuna.load_study(study_name="w", storage=url)  # a second worker's handle
    first = promotions(study, eta=3, rungs=3, higher_is_better=True)
    second = promotions(other, eta=3, rungs=3, higher_is_better=True)
    assert [t.number for t in first] == [t.number for t in second] == [0]
    assert enqueue_promotions(study, first, url) + enqueue_promotions(other, second, url) == 1
    assert len(study.get_trials(states=(optuna.trial.TrialState.WAITING,))) == 1


def test_a_fork_climbs_the_ladder_again_on_the_cached_students_and_checkpoints(ladder_study, digits):
    from autocl.hardware import profile_from_dict
    from autocl.study import prepare_run

    _, space, url = ladder_study
    wider = profile_from_dict({"name": "test-cpu", "threads": 1, "batch_size": 8,
                               "measurement": {"warmup": 2, "repeats": 5, "min_repeats": 3, "max_seconds": 0.5}})
    plan = prepare_run("ladder", url, "digits", space, [wider], fork="ladder-b8")
    assert plan.seeds, "the ladder study's screened configurations carry over"
    forked = run_search(digits, space, wider, study_name=plan.study_name, storage=plan.url,
                        n_trials=len(plan.seeds) + 2, remeasure=False, recipes=False, sensitivity=False,
                        seeds=plan.seeds)
    done = [t for t in forked.study.trials if t.state == COMPLETE]
    seeded = [t for t in done if "seeded_from" in t.user_attrs]
    # a forked configuration starts at rung 0 again (its latency is new) on the student the old study
    # cached, and a promotion in the fork resumes from the checkpoint of the rung below: nothing retrains
    assert seeded and all(rung_of(t) == 0 and t.user_attrs["student_reused"] for t in seeded)
    promoted = [t for t in done if rung_of(t) == 1]
    assert promoted and all(t.user_attrs["fidelity"]["resumed_from"] == 3 for t in promoted)
