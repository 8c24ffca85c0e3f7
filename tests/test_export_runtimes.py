"""Exporting for a target whose runtime is not the one that computed the study's metric: the metric
is verified through the runtime that computed it (OpenVINO's int8 kernels round differently), the
latency on the target, and the card names the runtime that timed it."""

from types import SimpleNamespace

import pytest

from autocl.export import export_trial
from autocl.study import front_records, metric_profile, run_search

from tests.study.test_cross_target import two_runtimes


@pytest.fixture(scope="module")
def study(digits, fast_space, tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'ship.db'}"
    return run_search(digits, fast_space, two_runtimes(), study_name="ship", storage=url, n_trials=3).study


def test_the_study_records_which_runtime_computed_its_metric(study):
    assert metric_profile(study)["name"] == "ort"  # the first local profile given to the search
    # a study made before it was stored: its first local profile, the one the search evaluated with
    older = {k: v for k, v in study.user_attrs.items() if k != "metric_profile"}
    assert metric_profile(SimpleNamespace(user_attrs=older))["name"] == "ort"
    remote = {**older["profiles"]["ort"], "measure": "remote"}
    assert metric_profile(SimpleNamespace(user_attrs={"profiles": {"ort": remote}})) is None  # then the CPU provider


def test_a_member_of_the_second_target_s_front_exports_and_verifies(study, tmp_path):
    member = front_records(study, "ov")[0]
    result = export_trial(study, tmp_path / "bundle", trial=member.number, profile="ov", latency_tolerance=5.0)
    v = result.verification
    assert result.profile == "ov" and v.metric_ok and v.metric == pytest.approx(member.metric, abs=1e-6)
    card = (tmp_path / "bundle" / "MODEL_CARD.md").read_text()
    assert "profile **ov**" in card
    if study.user_attrs["profiles"]["ov"]["execution_provider"] == "OpenVINO":
        assert "Measured with OpenVINO" in card
