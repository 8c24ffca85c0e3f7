"""Picks choose the member a hand computation on the front chooses."""

import pytest

from autocl.errors import ConfigError, StudyError
from autocl.report import pick, study_data
from tests.report.studies import synthetic_study, trial_row

BASE = {"metric": 0.99, "latency_ms": 12.0, "latency_iqr_ms": 0.1, "size_kb": 60.0}
#          metric latency size   metric_drop
FRONT = [(0.990, 10.0, 50),   # 0   0.000
         (0.985, 6.0, 40),    # 1   0.005
         (0.970, 4.0, 30),    # 2   0.020
         (0.900, 3.5, 20),    # 3   0.090
         (0.800, 3.0, 10),    # 4   0.190
         (0.980, 7.0, 45)]    # 5   dominated by 1: never picked


@pytest.fixture(scope="module")
def data():
    return study_data(synthetic_study([trial_row(*r) for r in FRONT], baseline=BASE))


@pytest.mark.parametrize("spec, expected", [
    ("fastest-within:0.01", 1),             # drops 0 and 0.005 qualify; 1 is faster
    ("metric_drop<=0.015", 1),              # 5 (drop 0.01) qualifies too, but it is dominated
    ("metric_drop<=0.03,latency_ms<=5", 2),
    ("metric_drop<=3%", 2),
    ("size_kb<=25, metric>=0.85", 3),
    ("speedup>=3", 4),                      # 12/4 = 3.0 for 2, 12/3.5 and 12/3 for 3 and 4: the fastest is 4
    ("latency_ms<5,metric>0.9", 2),          # strict: 3 has exactly 0.9
])
def test_condition_picks_match_a_hand_computation(data, spec, expected):
    assert pick(data, spec).trial.number == expected


def test_knee_by_hand(data):
    # normalized speed (10 - l) / 7 plus normalized accuracy (m - 0.8) / 0.19:
    # 0: 0 + 1 = 1.00, 1: .571 + .974 = 1.545, 2: .857 + .895 = 1.752, 3: .929 + .526 = 1.455, 4: 1 + 0 = 1.00
    chosen = pick(data, "knee")
    assert chosen.trial.number == 2 and "1.752" in chosen.why


def test_knee_of_two_members_is_the_more_accurate():
    two = study_data(synthetic_study([trial_row(0.99, 2.0, 10), trial_row(0.90, 1.0, 10)], baseline=BASE))
    assert pick(two, "knee").trial.number == 0


def test_an_impossible_pick_names_the_failing_condition_and_the_closest(data):
    with pytest.raises(StudyError) as err:
        pick(data, "latency_ms<=1")
    msg = str(err.value)
    assert "latency_ms<=1 holds for none of the 5 members" in msg and "closest: trial 4" in msg
    with pytest.raises(StudyError, match="each condition holds for some member, but no member meets all") as err:
        pick(data, "metric_drop<=0.001,latency_ms<=3.2")
    assert "Closest: trial" in str(err.value)


@pytest.mark.parametrize("spec", ["latency<=3", "metric_drop=0.1", "fastest", "metric_drop<=abc"])
def test_an_unreadable_pick_is_a_config_error(data, spec):
    with pytest.raises(ConfigError, match="--pick"):
        pick(data, spec)


def test_metric_drop_needs_a_baseline():
    nobase = study_data(synthetic_study([trial_row(0.9, 1.0, 10)]))
    with pytest.raises(StudyError, match="no fp32 baseline"):
        pick(nobase, "fastest-within:0.01")
    assert pick(nobase, "metric>=0.5").trial.number == 0
