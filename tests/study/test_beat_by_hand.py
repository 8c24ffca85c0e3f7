"""The search's own ways to beat the by-hand recipes: recipes first, polishing, a drop bound and a
time budget, and the closing line that says what to keep."""

import time

import optuna
import pytest
from typer.testing import CliRunner

from autocl.errors import ConfigError
from autocl.study import run_search


@pytest.fixture(scope="module")
def polished(tmp_path_factory, digits, fast_space, fast_profile):
    url = f"sqlite:///{tmp_path_factory.mktemp('polish') / 'p.db'}"
    # 8 screening steps leave a half-pruned digits student far below the teacher: polish whatever it is
    d = fast_space.distill
    space = fast_space.model_copy(update={"distill": d.model_copy(update={"polish": d.polish.model_copy(
        update={"window": 1.0})})})
    result = run_search(digits, space, fast_profile, study_name="p", storage=url, n_trials=5,
                        max_drop=0.02, remeasure=False)
    return result


def test_a_new_study_starts_with_the_recipes(polished):
    recipes = [t for t in polished.study.trials if t.user_attrs.get("recipe")]
    # fast_space: ratios 0/0.5, precisions fp32/int8 -> int8 unpruned, fp32 and int8 at 0.5
    assert {(t.params["prune.ratio"], t.params["quant.precision"]) for t in recipes} == {
        (0.0, "int8"), (0.5, "fp32"), (0.5, "int8")}
    assert [t.number for t in recipes] == [0, 1, 2]


def test_polished_twins_distil_longer_and_keep_the_screened_trial(polished):
    study = polished.study
    twins = [t for t in study.trials if "polish_of" in t.user_attrs]
    assert twins, "a polishing round should have run after the screened trials"
    for twin in twins:
        screened = study.trials[twin.user_attrs["polish_of"]]
        assert screened.user_attrs["distilled"] and screened.state == optuna.trial.TrialState.COMPLETE
        a, b = screened.user_attrs["config"], twin.user_attrs["config"]
        assert b["distill"]["steps"] > a["distill"]["steps"] and b["distill"]["early_stop"]
        assert a["prune"] == b["prune"] and a["quant"] == b["quant"]
        assert twin.user_attrs["student_key"] != screened.user_attrs["student_key"]


def test_members_beyond_the_drop_bound_are_infeasible(polished):
    study = polished.study
    base = polished.baseline["metric"]
    assert study.user_attrs["constraint_names"][-1] == "metric:max_drop"
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            feasible = all(v <= 0 for v in t.user_attrs["constraints"])
            assert feasible == (base - t.values[0] <= 0.02 + 1e-9), (t.number, t.values[0], base)


def test_the_achieved_pruning_is_stored_beside_the_ratio(polished):
    for t in polished.study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            p = t.user_attrs["pruning"]
            assert p["requested_ratio"] == t.user_attrs["config"]["prune"]["ratio"]
            assert (p["kept_macs"] < 1.0) == (p["requested_ratio"] > 0)


def test_a_time_budget_stops_the_search(tmp_path, digits, fast_space, fast_profile):
    url = f"sqlite:///{tmp_path / 't.db'}"
    t0 = time.monotonic()
    result = run_search(digits, fast_space, fast_profile, study_name="t", storage=url, n_trials=None, timeout=4,
                        remeasure=False, polish=False)
    assert time.monotonic() - t0 < 60  # one trial may finish after the budget, not a search
    assert 1 <= len(result.study.trials) < 50
    with pytest.raises(ConfigError, match="--timeout"):
        run_search(digits, fast_space, fast_profile, study_name="t2", storage=url, n_trials=None)


def test_durations_are_read_as_a_person_writes_them():
    from autocl.cli._search import parse_duration

    assert parse_duration("20m") == 1200 and parse_duration("90s") == 90 and parse_duration("1.5h") == 5400
    assert parse_duration("45") == 45 and parse_duration(None) is None
    for bad in ("soon", "-5m", "0"):
        with pytest.raises(ConfigError, match="--timeout"):
            parse_duration(bad)


def test_the_search_ends_with_what_to_keep_and_how_to_export_it(tmp_path, monkeypatch, fast_space):
    import yaml

    from autocl.cli import app

    monkeypatch.chdir(tmp_path)
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(fast_space.model_dump(mode="json")))
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump({"name": "tiny", "threads": 1, "batch_size": 4,
                                       "measurement": {"warmup": 2, "repeats": 5, "min_repeats": 3, "max_seconds": 0.5}}))
    out = CliRunner().invoke(app, ["search", "--workload", "digits", "--space", str(space), "--profile", str(profile),
                                   "--study", "keep", "--trials", "3", "--max-drop", "0.02", "--no-polish"])
    assert out.exit_code == 0, out.output
    if "is measurably faster than the fp32 model" in out.output:  # a tiny model may gain nothing
        assert "autocl export" not in out.output
    else:
        assert "fastest member within a metric drop of 0.02" in out.output
        assert "autocl export --study keep --trial" in out.output


def test_the_search_does_not_recommend_a_member_that_is_not_faster(capsys):
    """When the fastest member within the bound is not faster than fp32 (the record's flag, decided
    on the search's own measurements), the closing line says so and offers no export."""
    from autocl.cli._search import _print_keeper
    from tests.report.studies import PROFILE, synthetic_study, trial_row

    base = {"metric": 0.99, "latency_ms": 1.0, "size_kb": 100.0}
    # the pair the search measured (the flag is recomputed from it, never read back from a stored copy)
    slow = {"baseline_measurements": {PROFILE: {"median_ms": 1.0}}}
    study = synthetic_study([trial_row(0.99, 1.02, 30.0, extra=slow), trial_row(0.90, 0.5, 20.0)], baseline=base)
    _print_keeper("sqlite://", "syn", study, 0.01)
    out = capsys.readouterr().out
    assert "is measurably faster than the fp32 model" in out and "trial 0" in out and "autocl export" not in out
