"""The report's plain data, on studies whose numbers are chosen here so results are checked by hand."""

import optuna
import pytest

from autocl.errors import StudyError
from autocl.report import (
    DOMINATED, FAILED, FRONT, INFEASIBLE, UNMEASURED, bits_map, build_report, explain_layers, front_frame, history,
    param_importances, require_front, study_data, trials_frame,
)
from tests.report.studies import synthetic_study, trial_row

BASE = {"metric": 0.99, "latency_ms": 2.0, "latency_iqr_ms": 0.1, "size_kb": 40.0}


ROWS = [
    trial_row(0.99, 1.0, 30),                       # 0 front: most accurate
    trial_row(0.98, 0.5, 20, ratio=0.5),            # 1 front: fastest feasible
    trial_row(0.97, 0.6, 25, ratio=0.5),            # 2 dominated by 1
    trial_row(0.995, 0.3, 10, constraints=[0.2]),   # 3 infeasible: would dominate everything
    trial_row(None, None, None, error="trial 4 (quantizing): ORT refused the graph"),  # 4 failed
    trial_row(0.99, 0.9, 29, profiles={"other": 0.1}),  # 5 measured on another profile only
]


@pytest.fixture()
def study():
    return synthetic_study(ROWS, baseline=BASE)


def test_trials_are_classified_with_reasons(study):
    data = study_data(study)
    status = {t.number: t.status for t in data.trials}
    assert status == {0: FRONT, 1: FRONT, 2: DOMINATED, 3: INFEASIBLE, 4: FAILED, 5: UNMEASURED}
    reason = {t.number: t.reason for t in data.trials}
    assert "dominated by trial 1" in reason[2]
    assert "exceeded by 0.2" in reason[3]
    assert "ORT refused the graph" in reason[4]
    assert "not measured on profile 'p1'" in reason[5] and "other" in reason[5]
    assert [t.number for t in data.front] == [1, 0]  # fastest first


def test_the_front_is_optunas_constrained_front():
    study = synthetic_study(ROWS[:5], baseline=BASE)  # every completed trial measured on the primary profile
    assert {t.number for t in study_data(study).front} == {t.number for t in study.best_trials} == {0, 1}


def test_named_constraints_name_the_budget():
    study = synthetic_study([trial_row(0.9, 1.0, 10)])
    t = study.trials[0]
    study.add_trial(optuna.trial.create_trial(values=t.values, params=t.params, distributions=t.distributions,
                                              user_attrs=t.user_attrs, constraints={"latency_budget": 0.4}))
    info = study_data(study).trial(1)
    assert info.status == INFEASIBLE and "latency_budget exceeded by 0.4" in info.reason


def test_each_profile_has_its_own_front():
    study = synthetic_study([
        trial_row(0.99, 1.0, 30, profiles={"p1": 1.0, "gpu": 0.2}),
        trial_row(0.99, 0.5, 30, profiles={"p1": 0.5, "gpu": 0.4}),
    ])
    assert [t.number for t in study_data(study, "p1").front] == [1]
    assert [t.number for t in study_data(study, "gpu").front] == [0]
    with pytest.raises(StudyError, match="measured on: p1, gpu"):
        study_data(study, "tpu")


def test_front_frame_numbers(study):
    df = front_frame(study_data(study))
    assert list(df["trial"]) == [1, 0]
    row = df.set_index("trial").loc[1]
    assert row["metric_drop"] == pytest.approx(0.01) and row["speedup_search"] == pytest.approx(4.0)
    assert row["metric_change"] == pytest.approx(-0.01)
    assert row["size_kb"] == pytest.approx(20) and row["prune_ratio"] == 0.5
    assert df.attrs["metric_name"] == "accuracy" and df.attrs["profile"] == "p1"
    every = trials_frame(study_data(study))
    assert set(every["status"]) == {FRONT, DOMINATED, INFEASIBLE, FAILED, UNMEASURED}
    assert every.set_index("trial").loc[3, "constraints"] == {"0": 0.2}


def test_lower_is_better_metrics_flip_the_drop_and_the_front():
    study = synthetic_study([trial_row(0.10, 1.0, 30), trial_row(0.20, 1.0, 30)], higher_is_better=False,
                            baseline={**BASE, "metric": 0.05})
    data = study_data(study)
    assert [t.number for t in data.front] == [0]
    assert data.metric_drop(data.trial(0)) == pytest.approx(0.05)


def test_an_empty_or_failed_only_study_says_why_there_is_no_front():
    empty = synthetic_study([])
    with pytest.raises(StudyError, match="no trials yet"):
        require_front(study_data(empty))
    assert front_frame(study_data(empty)).empty and "latency_ms" in front_frame(study_data(empty)).columns
    failed = synthetic_study([trial_row(None, None, None, error="trial 0 (distilling): loss is NaN"),
                              trial_row(None, None, None, error="trial 1 (exporting): boom")])
    with pytest.raises(StudyError, match=r"2 failed.*loss is NaN"):
        build_report(failed)
    infeasible = synthetic_study([trial_row(0.9, 1.0, 10, constraints=[1.5])])
    with pytest.raises(StudyError, match="1 infeasible.*exceeded by 1.5"):
        require_front(study_data(infeasible))


def test_bit_map_reads_bits_and_shows_unknown_codes():
    study = synthetic_study([trial_row(0.9, 1.0, 10, bits="8fh"), trial_row(0.8, 0.5, 5, bits="8x8")])
    m = bits_map(study_data(study))
    assert m.trials == (1, 0)
    assert m.values[1] == (8, 32, 16) and m.labels[1] == ("int8", "fp32", "fp16")
    assert m.values[0] == (8, None, 8) and m.labels[0][1] == "unknown 'x'"


def test_explanations_use_the_sensitivity_table_when_present():
    rows = [trial_row(0.99, 1.0, 30, bits="8f8")]
    plain = explain_layers(study_data(synthetic_study(rows)))
    assert plain[0].notes[0].layer == "conv2" and "sensitivity not measured" in plain[0].notes[0].text
    sens = {"conv2": {"int8": 0.042}, "fc": {"int8": 0.0}}
    ex = explain_layers(study_data(synthetic_study(rows, sensitivity=sens)))
    note = ex[0].notes[0]
    assert note.kind == "precision" and note.sensitivity == pytest.approx(0.042) and "int8 was allowed" in note.text
    assert "latency share not measured" in note.text


def test_hypervolume_by_hand_and_never_decreasing():
    study = synthetic_study([trial_row(0.98, 1.0, 20), trial_row(0.97, 1.5, 30), trial_row(0.99, 0.5, 10)],
                            baseline=BASE)
    h = history(study_data(study))
    # normalized losses: trials (-0.98, .5, .5), (-0.97, .75, .75), (-0.99, .25, .25); baseline (-0.99, 1, 1)
    # worst (-0.97, 1, 1), best (-0.99, .25, .25): reference = worst + 10% of the range
    ref = (-0.97 + 0.002, 1 + 0.075, 1 + 0.075)
    assert h.reference_point == pytest.approx(ref)
    first = (ref[0] + 0.98) * (ref[1] - 0.5) * (ref[2] - 0.5)
    assert h.hypervolume[0] == pytest.approx(first)
    assert h.hypervolume[1] == pytest.approx(first)  # a dominated trial adds nothing
    assert h.hypervolume[2] == pytest.approx((ref[0] + 0.99) * (ref[1] - 0.25) * (ref[2] - 0.25))
    assert h.best_metric == (0.98, 0.98, 0.99)


def test_importance_finds_the_parameter_that_drives_each_objective():
    rows = []
    for i in range(12):
        ratio = (0.0, 0.25, 0.5)[i % 3]
        bits = ("888", "f88", "8f8", "ff8")[i % 4]
        rows.append(trial_row(0.99 - ratio, 1.0 + bits.count("f"), 10 + i % 2, bits=bits, ratio=ratio))
    study = synthetic_study(rows)
    imp = param_importances(study, study_data(study))
    acc = imp.values["accuracy"]
    assert max(acc, key=acc.get) == "prune.ratio" and acc["prune.ratio"] > 0.9
    lat = imp.values["latency_ms (p1)"]
    assert max(lat, key=lat.get) in ("bits.conv1", "bits.conv2")
    few = synthetic_study(rows[:2])
    assert param_importances(few, study_data(few)).values == {}
