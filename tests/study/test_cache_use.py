"""What a study keeps in the cache: its front members' students and artifacts, and those a queued
polishing run builds on; nothing of a dominated trial."""

import optuna

from autocl.compress import ARTIFACT, STUDENT, CacheEntry, CacheLayout
from autocl.study import keep_predicate, study_cache_use

KEY = "k" * 16


def _add(study, key, metric, latency, size):
    attrs = {
        "student_key": key,
        "artifact_path": f"/elsewhere/{key}-{'q' * 16}.onnx",
        "measurements": {"p": {"median_ms": latency}},
        "size_bytes": size * 1024,
    }
    study.add_trial(
        optuna.trial.create_trial(
            values=[metric, latency, size], user_attrs=attrs, state=optuna.trial.TrialState.COMPLETE
        )
    )


def _entries(layout, key):
    return (CacheEntry(layout, STUDENT, key, (), 0, 0.0), CacheEntry(layout, ARTIFACT, f"{key}-{'q' * 16}", (), 0, 0.0))


def test_the_front_and_queued_polishing_are_kept_and_the_rest_is_not(tmp_path):
    study = optuna.create_study(
        directions=["maximize", "minimize", "minimize"], storage=f"sqlite:///{tmp_path / 'u.db'}", study_name="u"
    )
    study.set_user_attr("workload", {"name": "toy", "higher_is_better": True})
    study.set_user_attr("fingerprint", {"workload_key": KEY})
    study.set_user_attr("profiles", {"p": {}})
    front, polished, dominated = "a" * 16, "b" * 16, "c" * 16
    _add(study, front, 0.9, 1.0, 10)
    _add(study, polished, 0.8, 2.0, 20)  # dominated, but a queued polishing run builds on it
    _add(study, dominated, 0.7, 3.0, 30)
    study.enqueue_trial({}, user_attrs={"polish_of": 1})
    use = study_cache_use(study, "sqlite:///u.db", tmp_path)
    assert use.front_trials == (0,)
    layout = CacheLayout.of(tmp_path, "toy", KEY)
    keep = keep_predicate([use])
    assert all(keep(e) for e in (*_entries(layout, front), *_entries(layout, polished)))
    assert not any(keep(e) for e in _entries(layout, dominated))
    assert all(use.uses(e) for e in _entries(layout, dominated))  # still counted as the study's
    other = CacheLayout.of(tmp_path, "toy", "o" * 16)  # another workload key: not this study's
    assert not any(keep(e) for e in _entries(other, front))


def test_a_waiting_promotion_keeps_its_ladder_checkpoints_and_a_stopped_ladder_does_not(tmp_path):
    from autocl.compress import CHECKPOINT, checkpoint_key

    study = optuna.create_study(
        directions=["maximize", "minimize", "minimize"], storage=f"sqlite:///{tmp_path / 'l.db'}", study_name="l"
    )
    study.set_user_attr("workload", {"name": "toy", "higher_is_better": True})
    study.set_user_attr("fingerprint", {"workload_key": KEY})
    study.set_user_attr("profiles", {"p": {}})
    promoted, stopped = "d" * 16, "e" * 16
    for n, ladder in enumerate((promoted, stopped)):
        attrs = {"student_key": f"{n}" * 16, "fidelity": {"rung": 0, "ladder_key": ladder}}
        study.add_trial(
            optuna.trial.create_trial(values=[0.8, 2.0 + n, 20], user_attrs=attrs, state=optuna.trial.TrialState.COMPLETE)
        )
    study.enqueue_trial({}, user_attrs={"rung_of": 0})  # trial 0's student goes on to the next rung
    use = study_cache_use(study, "sqlite:///l.db", tmp_path)
    layout = CacheLayout.of(tmp_path, "toy", KEY)

    def ckpt(ladder):
        return CacheEntry(layout, CHECKPOINT, checkpoint_key(ladder, 80), (), 0, 0.0)

    assert use.keeps(ckpt(promoted)) and not use.keeps(ckpt(stopped))
    assert use.uses(ckpt(promoted)) and use.uses(ckpt(stopped)) and not use.uses(ckpt("f" * 16))
