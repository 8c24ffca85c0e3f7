"""The study record: one definition of each derived number, and every view reading the same one."""

from __future__ import annotations

import json
import math
import re

import optuna
import pytest

from autocl.study import (
    is_compressed, is_distilled, metric_change, not_faster, pareto_members, pruning_applied, read_trials, speedup,
)
from tests.report.studies import searched_study, synthetic_study, trial_row


@pytest.fixture(scope="module")
def searched(tmp_path_factory, digits, fast_space, fast_profile):
    return searched_study(tmp_path_factory, digits, fast_space, fast_profile)


def _cfg(ratio=0.0, head_ratio=0.0, unstructured=0.0, steps=8, default="fp32", layers=None) -> dict:
    return {"prune": {"ratio": ratio, "head_ratio": head_ratio, "unstructured": unstructured, "layer_ratios": {}},
            "distill": {"steps": steps}, "quant": {"default": default, "layers": layers or {}}}


def test_metric_change_is_positive_when_better_for_either_direction():
    assert metric_change(0.97, 0.98, True) == pytest.approx(-0.01)
    assert metric_change(0.99, 0.98, True) == pytest.approx(0.01)
    assert metric_change(0.10, 0.20, False) == pytest.approx(0.10)  # a lower loss is better: positive
    assert metric_change(0.30, 0.20, False) == pytest.approx(-0.10)


@pytest.mark.parametrize("cfg, distilled", [
    (_cfg(), False), (_cfg(ratio=0.5), True), (_cfg(head_ratio=0.25), True), (_cfg(unstructured=0.5), True),
    (_cfg(ratio=0.5, steps=0), False), (_cfg(default="int8"), False),
])
def test_distilled_whenever_the_pipeline_changed_the_model(cfg, distilled):
    assert is_distilled(cfg) is distilled


@pytest.mark.parametrize("cfg, counts, compressed", [
    (_cfg(), {"fp32": 3}, False), (_cfg(), {"fp32": 2, "int8_dynamic": 1}, True), (_cfg(), {"int4": 1}, True),
    (_cfg(), {"fp16": 3}, True), (_cfg(head_ratio=0.25), {"fp32": 3}, True), (_cfg(default="int4"), None, True),
    (_cfg(layers={"fc": "int8_dynamic"}), None, True), (_cfg(), None, False),
])
def test_compressed_is_any_change_against_the_fp32_teacher(cfg, counts, compressed):
    assert is_compressed(cfg, counts) is compressed


def test_not_faster_and_speedup_use_the_same_pair():
    base = {"median_ms": 1.0, "rel_ci": 0.05}
    assert not_faster({"median_ms": 0.97, "rel_ci": 0.01}, base)  # within the noise
    assert not not_faster({"median_ms": 0.5, "rel_ci": 0.01}, base)
    assert speedup(1.0, 0.5) == 2.0 and speedup(None, 0.5) is None


def test_one_dominance_computation():
    pts = {1: (1.0, 1.0, 1.0), 2: (2.0, 2.0, 2.0), 3: (0.5, 3.0, 1.0), 4: (1.0, 1.0, 1.0)}
    assert pareto_members(pts) == {1, 3, 4}


def test_the_reader_names_both_speedups_and_flags_with_the_search_pair():
    study = synthetic_study([trial_row(0.9, 2.0, 30, ratio=0.5), trial_row(0.95, 4.0, 40)],
                            baseline={"metric": 0.96, "latency_ms": 4.0, "latency_iqr_ms": 0.1, "size_kb": 100})
    study.set_user_attr("remeasured", {"p1": {"members": {"0": {"speedup": 1.5, "median_ms": 2.2, "changed": True}}}})
    records = {r.number: r for r in read_trials(study, "p1", baseline_metric=0.96)}
    assert records[0].speedup_search == pytest.approx(2.0) and records[0].speedup_remeasured == 1.5
    assert records[0].distilled and records[0].compressed and records[0].metric_change == pytest.approx(-0.06)
    assert "re-measured 1.50x (2.200 ms)" in records[0].notes
    # the comparable latency: the study's baseline over the re-measured speed-up, else the trial's
    assert records[0].speedup == 1.5 and records[0].normalized_ms == pytest.approx(4.0 / 1.5)
    assert records[1].speedup == pytest.approx(1.0) and records[1].normalized_ms == pytest.approx(4.0)
    assert records[1].speedup_remeasured is None and records[1].compressed  # its int8 layers (bits 88f)


def _same(a, b) -> bool:
    """Equal as numbers (NaN and None both mean 'none'); everything else exactly."""
    none = (lambda x: x is None or (isinstance(x, float) and math.isnan(x)))
    if none(a) or none(b):
        return none(a) and none(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    return a == b


def test_cli_json_api_frame_and_report_agree_number_for_number(searched, tmp_path):
    url, name = searched
    study = optuna.load_study(study_name=name, storage=url)
    # the study is shared with other modules: put its own re-measurements back afterwards, or their
    # record's front would no longer be the stored one
    original = study.user_attrs.get("remeasured", {})
    try:
        _agree(study, url, name, tmp_path)
    finally:
        study.set_user_attr("remeasured", original)


def _agree(study, url, name, tmp_path):
    from typer.testing import CliRunner

    import autocl
    from autocl.cli import app

    study.set_user_attr("remeasured", {"test-cpu": {"members": {
        str(t.number): {"speedup": 9.5, "median_ms": 0.01, "changed": False} for t in study.trials}}})
    cli = CliRunner().invoke(app, ["front", "--study", name, "--storage", url, "--format", "json"])
    assert cli.exit_code == 0, cli.output
    rows = json.loads(cli.output)
    view = autocl.load_study(name, storage=url)
    frame = view.front().to_dict("records")
    page = view.report(tmp_path / "r.html").read_text()
    report = json.loads(re.search(r'<script type="application/json" id="autocl-data">(.*?)</script>', page,
                                  re.S).group(1).replace("<\\/", "</"), parse_constant=lambda c: float(c))["front"]
    assert rows and len(rows) == len(frame) == len(report)
    for cli_row, api_row, rep_row in zip(rows, frame, report):
        assert set(cli_row) == set(api_row) == set(rep_row)
        for key in cli_row:
            assert _same(cli_row[key], api_row[key]) and _same(cli_row[key], rep_row[key]), (key, cli_row, api_row)
        assert cli_row["speedup_search"] and cli_row["speedup_remeasured"] == 9.5
    assert view.pick("speedup_remeasured>=9").trial.number == rows[0]["trial"]  # the fastest member


def test_derived_flags_are_recomputed_never_read_back_from_stored_copies():
    lying = {"distilled": True, "compressed": True, "not_faster": {"p1": False},
             "pruning": {"kept_params": 0.5, "kept_macs": 0.5, "applied": True}}
    pruned = {"distilled": False, "compressed": False, "not_faster": {"p1": True},
              "baseline_measurements": {"p1": {"median_ms": 4.0}},
              "pruning": {"kept_params": 1.0, "kept_macs": 0.98, "applied": True}}
    study = synthetic_study([trial_row(0.95, 4.0, 40, bits="fff", extra=lying),
                             trial_row(0.9, 2.0, 30, ratio=0.5, extra=pruned)])
    plain, rounded = read_trials(study, "p1")
    assert not plain.distilled and not plain.compressed and plain.not_faster is None
    assert plain.pruning_applied is None  # nothing was asked for
    assert rounded.distilled and rounded.compressed and rounded.not_faster is False  # 2 ms against 4 ms
    # the one rule for "nothing removed": kept parameters, whatever the MACs or the stored flag say
    assert rounded.pruning_applied is False
    assert pruning_applied(_cfg(ratio=0.5), 0.7) is True and pruning_applied(_cfg(ratio=0.5), 1.0) is False
    assert pruning_applied(_cfg(), 0.7) is None
