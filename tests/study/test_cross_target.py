"""Cross-target regret: each target's fastest member within the bound, its speed-up on every other
target (from the record, or measured again in one run per target) and the regret of shipping it."""

import math

import pytest

from autocl.errors import StudyError
from autocl.hardware import profile_from_dict
from autocl.openvino_session import OPENVINO, openvino_missing
from autocl.study import cross_targets, read_front, read_trials, run_search

MEASUREMENT = {"warmup": 2, "repeats": 8, "min_repeats": 3, "max_seconds": 0.3, "memory": False}


def two_runtimes():
    """onnxruntime's CPU provider and OpenVINO on this CPU; without OpenVINO, a second CPU target."""
    cpu = profile_from_dict({"name": "ort", "threads": 1, "batch_size": 4, "measurement": MEASUREMENT})
    if openvino_missing() is None:
        other = {"name": "ov", "execution_provider": OPENVINO}
    else:
        other = {"name": "ov", "batch_size": 32}  # the package is missing: the same logic on another target
    return [cpu, profile_from_dict({"threads": 1, "batch_size": 4, **other, "measurement": MEASUREMENT})]


@pytest.fixture(scope="module")
def searched(digits, fast_space, tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'cross.db'}"
    profiles = two_runtimes()
    result = run_search(digits, fast_space, profiles, study_name="cross", storage=url, n_trials=4, max_drop=0.5)
    return url, result.study, profiles


def test_each_target_s_winner_is_its_fastest_front_member_within_the_bound(searched):
    url, study, _ = searched
    table = cross_targets(study)
    assert table.max_drop == 0.5 and table.how == "recorded"
    for name, w in table.winners.items():
        members = [r for r in read_trials(study, name) if r.status == "front" and r.metric_drop <= 0.5]
        assert w.trial in {r["trial"] for r in read_front(url, "cross", name)}
        assert w.speedup == max(r.speedup for r in members)
    # a bound no member meets is refused with a line that says what to do
    with pytest.raises(StudyError, match="--max-drop"):
        cross_targets(study, max_drop=-1.0)


def test_recorded_speedups_are_the_record_s_and_regret_is_what_the_target_gives_up(searched):
    _, study, _ = searched
    table = cross_targets(study)
    for t in table.winners:
        by_number = {r.number: r for r in read_trials(study, t)}
        for s, w in table.winners.items():
            assert table.speedups[t][s] == by_number[w.trial].speedup
            expected = 1 - table.speedups[t][s] / table.speedups[t][t]
            assert table.regret(t, s) == pytest.approx(expected)
            assert table.regret(t, s) >= -1e-12  # no budgets: nothing within the bound beats t's own winner on t
        assert table.regret(t, t) == 0
    data = table.to_dict()
    assert set(data["regret"]) == set(table.winners) and data["winners"]["ort"]["trial"] == table.winners["ort"].trial


def test_measured_in_one_run_per_target_with_the_metric_through_each_runtime(searched, digits):
    _, study, profiles = searched
    table = cross_targets(study, profiles=profiles, workload=digits)
    assert table.how == "measured" and set(table.load_1m) == {"ort", "ov"}
    for t in table.winners:
        assert all(x is not None and x > 0 and math.isfinite(x) for x in table.speedups[t].values())
        assert table.regret(t, t) == 0
    # on onnxruntime's CPU provider the metric is the one the search computed: same artifact, same runtime
    for s, w in table.winners.items():
        assert table.drops["ort"][s] == pytest.approx(w.metric_drop if s == "ort" else next(
            r.metric_drop for r in read_trials(study, "ort") if r.number == w.trial), abs=1e-6)
        assert table.drops["ov"][s] is not None and abs(table.drops["ov"][s]) < 0.5


def test_a_study_on_one_target_is_refused(digits, fast_space, tmp_path):
    url = f"sqlite:///{tmp_path / 'one.db'}"
    result = run_search(digits, fast_space, two_runtimes()[:1], study_name="one", storage=url, n_trials=1)
    with pytest.raises(StudyError, match="--profile cpu-local --profile cpu-openvino"):
        cross_targets(result.study)
