import optuna
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from autocl.errors import StudyError
from autocl.study import front_records, read_front, run_search
from autocl.study._tables import ParetoEntry, engine_for


@pytest.fixture(scope="module")
def searched(digits, fast_space, fast_profile, tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'study.db'}"
    result = run_search(digits, fast_space, fast_profile, study_name="s", storage=url, n_trials=4)
    return url, result


def test_every_trial_stores_its_config_and_measurements(searched):
    _, result = searched
    done = [t for t in result.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 4
    for t in done:
        assert {"config", "measurements", "artifact_sha256", "size_bytes"} <= set(t.user_attrs)
        m = t.user_attrs["measurements"]["test-cpu"]
        # a new study's latency objective is the comparable one: the study's baseline over the speed-up
        base_ms = result.study.user_attrs["baselines"]["test-cpu"]["latency_ms"]
        assert t.values[1] == pytest.approx(base_ms / t.user_attrs["speedup"]["test-cpu"], rel=1e-3)
        assert len(m["samples_ms"]) >= 3
    assert result.study.metric_names == ["metric", "normalized_ms", "size_kb"]
    assert result.study.user_attrs["latency_objective"] == "normalized_ms"
    # the first trial is the whole-model int8 reference, unpruned
    first = result.study.trials[0].user_attrs["config"]
    assert first["prune"]["ratio"] == 0.0 and set(first["quant"]["layers"].values()) == {"int8"}


def test_the_front_table_is_written_from_the_record(searched):
    url, result = searched
    rows = read_front(url, "s", "test-cpu")
    members = front_records(result.study, "test-cpu")  # re-measured at the end: on those speed-ups
    assert [r["trial"] for r in rows] == [r.number for r in members]
    assert rows == [{**r.to_row(), "profile": "test-cpu"} for r in members]
    with Session(engine_for(url)) as s:  # plain SQL answers "what is the front of study s"
        stored = s.scalars(select(ParetoEntry).where(ParetoEntry.study_name == "s")).all()
        assert {e.trial_number for e in stored} == {r.number for r in members}
        assert all(e.config["type"] == "autocl.CompressionConfig" for e in stored)


def test_resuming_keeps_earlier_trials_and_reuses_students(searched, digits, fast_space, fast_profile):
    url, first = searched
    earlier = {t.number: t.values for t in first.study.trials if t.values}
    count = len(first.study.trials)
    seen = {t.user_attrs["student_key"] for t in first.study.trials if t.values}
    again = run_search(digits, fast_space, fast_profile, study_name="s", storage=url, n_trials=3)
    assert len(again.study.trials) == count + 3 and len(again.new_trials) == 3
    for t in again.study.trials:
        if t.number in earlier:
            assert t.values == earlier[t.number]
    new = [t for t in again.study.trials if t.number in again.new_trials and t.values]
    # a student trained in the first run is reused, never trained again
    assert all(t.user_attrs["student_reused"] for t in new if t.user_attrs["student_key"] in seen)
    assert any(t.user_attrs["student_key"] in seen for t in new)
    assert again.baseline == first.baseline


def test_resuming_with_another_workload_is_refused(searched, fast_space, fast_profile, digits):
    url, _ = searched
    other = digits.__class__(**{**digits.__dict__, "name": "other"})
    with pytest.raises(StudyError, match="workload"):
        run_search(other, fast_space, fast_profile, study_name="s", storage=url, n_trials=1)


def test_a_crashing_trial_fails_alone_and_the_study_survives(digits, fast_space, fast_profile, tmp_path, monkeypatch):
    import autocl.study._targets as targets_mod

    real = targets_mod.measure_many
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # the first call measures the baseline
            raise RuntimeError("device vanished")
        return real(*args, **kwargs)

    monkeypatch.setattr(targets_mod, "measure_many", flaky)
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    result = run_search(digits, fast_space, fast_profile, study_name="c", storage=url, n_trials=3)
    states = [t.state for t in result.study.trials]
    assert states.count(optuna.trial.TrialState.FAIL) == 1 and states.count(optuna.trial.TrialState.COMPLETE) == 2
    failed = next(t for t in result.study.trials if t.state == optuna.trial.TrialState.FAIL)
    assert "device vanished" in failed.user_attrs["error"] and f"trial {failed.number}" in failed.user_attrs["error"]
    assert "measuring" in failed.user_attrs["error"]


def test_a_nan_metric_fails_the_trial_with_a_clear_reason(digits, fast_space, fast_profile, tmp_path, monkeypatch):
    import autocl.study._search as search_mod

    monkeypatch.setattr(search_mod, "evaluate_artifact", lambda *a, **k: float("nan"))
    url = f"sqlite:///{tmp_path / 'nan.db'}"
    result = run_search(digits, fast_space, fast_profile, study_name="n", storage=url, n_trials=1)
    t = result.study.trials[0]
    assert t.state == optuna.trial.TrialState.FAIL and "NaN" in t.user_attrs["error"]
