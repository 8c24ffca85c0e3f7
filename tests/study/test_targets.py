"""Several hardware targets in one search: measurements per profile, fronts per profile, budgets
as constraints, the not-faster flag, narrowing the space, and re-measuring the front."""

import math
from pathlib import Path

import optuna
import pytest

from autocl.errors import ConfigError, StudyError
from autocl.hardware import Measurement, profile_from_dict
from autocl.study import front_records, read_front, read_trials, remeasure_front, run_search


def _profile(name, batch, **kw):
    return profile_from_dict({"name": name, "threads": 1, "batch_size": batch, **kw, "measurement": {
        "warmup": 2, "repeats": 8, "min_repeats": 3, "max_seconds": 0.5, **kw.pop("measurement", {})}})


@pytest.fixture(scope="module")
def two_targets(digits, fast_space, tmp_path_factory):
    import autocl.compress.pipeline as pipeline

    built = []
    real = pipeline.Compressor.build_student

    def counting(self, cfg, stage=lambda s: None):
        built.append(self.student_key(cfg))
        return real(self, cfg, stage)

    pipeline.Compressor.build_student = counting
    try:
        a, b = _profile("edge", 1), _profile("server", 16, measurement={"memory": False})
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'multi.db'}"
        result = run_search(digits, fast_space, [a, b], study_name="m", storage=url, n_trials=4)
    finally:
        pipeline.Compressor.build_student = real
    return url, result, built


def test_every_artifact_is_measured_on_every_profile_and_trained_once(two_targets):
    _, result, built = two_targets
    done = [t for t in result.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 4
    for t in done:
        ms = t.user_attrs["measurements"]
        assert set(ms) == {"edge", "server"}
        assert ms["edge"]["batch_size"] == 1 and ms["server"]["batch_size"] == 16
        # the first profile is the objective: its comparable latency, the study's fp32 baseline over the
        # speed-up measured in the trial
        base_ms = result.study.user_attrs["baselines"]["edge"]["latency_ms"]
        assert t.values[1] == pytest.approx(base_ms / t.user_attrs["speedup"]["edge"], rel=1e-3)
        assert set(t.user_attrs["speedup"]) == {"edge", "server"}
        assert "edge" in t.user_attrs["memory"] and "server" not in t.user_attrs["memory"]
        assert t.user_attrs["memory"]["edge"]["peak_mb"] > 0
    # training is shared: one student per distinct pruning/distillation key, never one per profile
    assert len(built) == len(set(built))
    assert result.study.user_attrs["fingerprint"]["profile"] == ["edge", "server"]
    assert set(result.study.user_attrs["baselines"]) == {"edge", "server"}


def _brute_front(study, profile):
    """By hand: the speed-up re-measured when present, else the trial's; the study's baseline over it."""
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    again = (study.user_attrs.get("remeasured") or {}).get(profile, {}).get("members", {})
    base = study.user_attrs["baselines"][profile]["latency_ms"]
    x = {t.number: (again.get(str(t.number)) or {}).get("speedup") or t.user_attrs["speedup"][profile] for t in done}
    pts = {t.number: (-t.values[0], base / x[t.number], t.values[2]) for t in done}
    return {n for n, p in pts.items()
            if not any(all(x <= y for x, y in zip(q, p)) and q != p for m, q in pts.items() if m != n)}


def test_each_profile_has_its_own_front_in_the_table(two_targets):
    url, result, _ = two_targets
    for name in ("edge", "server"):
        rows = read_front(url, "m", name)
        assert {r["trial"] for r in rows} == _brute_front(result.study, name)
        assert [r["trial"] for r in rows] == [r.number for r in front_records(result.study, name)]
        for r in rows:
            assert r["latency_ms"] == pytest.approx(
                result.study.trials[r["trial"]].user_attrs["measurements"][name]["median_ms"])


def test_the_front_is_remeasured_at_the_end(two_targets):
    url, result, _ = two_targets
    for name in ("edge", "server"):
        rows = read_front(url, "m", name)
        # the front after re-measuring is decided on the re-measured speed-ups: every member has one
        assert rows and all(r["remeasured_ms"] and r["remeasured_ms"] > 0 and r["speedup_remeasured"] for r in rows)
        assert all(r["latency_changed"] in (True, False) for r in rows)
        assert {r["trial"] for r in rows} <= set(result.remeasured[name]) | set(
            result.study.user_attrs["remeasured"][name]["members"])
    assert set(result.study.user_attrs["remeasured"]) == {"edge", "server"}


def test_resuming_with_other_profiles_is_refused(two_targets, digits, fast_space):
    url, _, _ = two_targets
    with pytest.raises(StudyError, match="profile"):
        run_search(digits, fast_space, [_profile("edge", 1)], study_name="m", storage=url, n_trials=1)
    with pytest.raises(StudyError, match="profile"):
        run_search(digits, fast_space, [_profile("server", 16), _profile("edge", 1)], study_name="m",
                   storage=url, n_trials=1)


def test_a_budget_no_artifact_meets_makes_every_trial_infeasible(digits, fast_space, tmp_path):
    tight = _profile("tiny-budget", 2, budgets={"size_mb": 1e-6, "latency_ms": 1e6})
    url = f"sqlite:///{tmp_path / 'b.db'}"
    result = run_search(digits, fast_space, tight, study_name="b", storage=url, n_trials=2, remeasure=False)
    done = [t for t in result.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done
    names = result.study.user_attrs["constraint_names"]
    assert sorted(names) == ["tiny-budget:latency_ms", "tiny-budget:size_mb"]
    for t in done:
        values = dict(zip(names, t.system_attrs["constraints"]))  # where Optuna's sampler keeps them
        assert values["tiny-budget:size_mb"] > 0 and values["tiny-budget:latency_ms"] <= 0
    assert read_front(url, "b", "tiny-budget") == [] and result.study.best_trials == []


def test_the_front_skips_infeasible_trials_and_uses_each_profile_s_speedup():
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    study.set_user_attr("baselines", {"a": {"latency_ms": 2.0}, "b": {"latency_ms": 4.0}})

    def add(metric, x_a, x_b, size, constraints=None):  # raw medians that would rank the other way
        study.add_trial(optuna.trial.create_trial(
            values=[metric, 2.0 / x_a, size],
            user_attrs={"measurements": {"a": {"median_ms": x_a}, "b": {"median_ms": x_b}},
                        "speedup": {"a": x_a, "b": x_b}, "size_bytes": size * 1024},
            system_attrs={"constraints": constraints} if constraints else {}))

    add(0.9, 1.0, 5.0, 10)   # 0: best metric
    add(0.8, 2.0, 1.1, 10)   # 1: fastest on a, slow on b
    add(0.8, 0.5, 9.0, 10)   # 2: fastest on b
    add(0.95, 9.0, 9.0, 1, constraints=[0.5])  # 3: dominates all but breaks a budget
    assert [r.number for r in front_records(study, "a")] == [1, 0]
    assert [r.number for r in front_records(study, "b")] == [2, 0]
    assert {r.number for r in front_records(study, "a")} == {t.number for t in study.best_trials}
    assert {r.number: r.normalized_ms for r in read_trials(study, "b")}[2] == pytest.approx(4.0 / 9.0)


def _m(median, rel_ci=0.01, key="k"):
    return Measurement(profile="p", median_ms=median, p90_ms=median, iqr_ms=0.0, mean_ms=median, n=10,
                       batch_size=1, device={"key": key}, ci95_ms=(median * (1 - rel_ci), median * (1 + rel_ci)),
                       rel_ci=rel_ci)


@pytest.mark.parametrize("cand, base, compressed, flag", [
    (1.2, 1.0, True, True),     # slower than fp32: flagged
    (0.995, 1.0, True, True),   # within the noise: not measurably faster
    (0.7, 1.0, True, False),    # clearly faster
    (1.2, 1.0, False, None),    # unpruned fp32: nothing to compare
])
def test_not_faster_than_the_baseline_is_flagged(monkeypatch, cand, base, compressed, flag, digits, tmp_path):
    import autocl.study._targets as targets

    monkeypatch.setattr(targets, "measure_many", lambda paths, p, feed, memory=None: [_m(cand), _m(base)])
    out = targets.measure_targets(tmp_path / "a.onnx", tmp_path / "b.onnx", [_profile("p", 1)], digits,
                                  compressed=compressed)
    assert out["p"].not_faster is flag and out["p"].speedup == pytest.approx(base / cand)


def test_the_front_table_shows_the_flag(two_targets):
    from rich.console import Console

    from autocl.cli._common import front_table

    from dataclasses import replace

    from autocl.report import study_data

    url, result, _ = two_targets
    rows = study_data(result.study, "edge").front
    assert rows
    flagged = [replace(r, not_faster=True) for r in rows]
    console = Console(width=250, record=True)
    console.print(front_table(flagged, metric_name="accuracy", baseline=result.baseline, title="t"))
    text = console.export_text()
    assert text.count("not faster than fp32") == len(rows)


def test_the_space_is_narrowed_to_what_the_targets_run_well(digits, fast_space, tmp_path):
    from autocl.study import narrow_space

    fp32_only = _profile("fp32-only", 2, precisions=["fp32"])
    assert narrow_space(fast_space, [fp32_only]).quant.precisions == ["fp32"]
    assert narrow_space(fast_space, [fp32_only, _profile("both", 2)]) == fast_space
    url = f"sqlite:///{tmp_path / 'n.db'}"

    class Notes:
        lines: list = []

        def trial_started(self, number):
            pass

        def stage(self, number, stage):
            pass

        def note(self, text):
            self.lines.append(text)

        def trial_finished(self, trial):
            pass

    result = run_search(digits, fast_space, fp32_only, study_name="n", storage=url, n_trials=2, remeasure=False,
                        reporter=Notes())
    for t in result.study.trials:
        assert not any(k.startswith("bits.") for k in t.params) and t.user_attrs["int8_layers"] == []
    # never silent: one line names the removed precision and the profile; the study keeps it for the report
    assert len(Notes.lines) == 1 and "int8" in Notes.lines[0] and "fp32-only" in Notes.lines[0]
    narrowed = result.study.user_attrs["narrowed"]
    assert narrowed["removed"] == ["int8"] and narrowed["profile"] == "fp32-only" and "int8" in narrowed["reason"]
    from autocl.report import study_data

    assert study_data(result.study).narrowed == narrowed
    int8_only = fast_space.model_copy(update={"quant": fast_space.quant.model_copy(update={"precisions": ["int8"]})})
    with pytest.raises(ConfigError, match="quant.precisions"):
        narrow_space(int8_only, [fp32_only])


def test_remeasuring_flags_a_changed_latency_and_skips_other_devices(two_targets, digits, monkeypatch):
    import autocl.study._remeasure as rem

    url, result, _ = two_targets
    edge = result.profiles[0]
    trials = result.study.trials
    key = trials[0].user_attrs["measurements"]["edge"]["device"]["key"]

    def ratio(n):  # the speed-up measured in the trial
        return trials[n].user_attrs["baseline_measurements"]["edge"]["median_ms"] / trials[n].user_attrs[
            "measurements"]["edge"]["median_ms"]

    def measured(new_ms, base_ms):  # each artifact's new median, by trial; the fp32 baseline's last
        return lambda paths, p, feed, memory=None: [
            _m(new_ms(int(Path(x).stem.split("-")[1])), key=key) for x in paths[:-1]] + [_m(base_ms, key=key)]

    monkeypatch.setattr(rem, "_artifact", lambda t, compressor: (Path(f"trial-{t.number}.onnx"), False))
    # ten times the trial's speed-up, against a baseline of 1 ms: changed beyond any noise, on the ratio
    # (the stored medians are tens of microseconds, their intervals wide: only a rise clears them)
    monkeypatch.setattr(rem, "measure_many", measured(lambda n: 0.1 / ratio(n), 1.0))
    out = remeasure_front(result.study, url, digits, [edge])["edge"]
    assert out and all(r["changed"] is True and r["speedup_change"] == pytest.approx(9.0, rel=1e-3)
                       for r in out.values())
    assert all(r["speedup"] == pytest.approx(ratio(n) * 10, rel=1e-3) for n, r in out.items())
    assert all(r["latency_changed"] and r["trial"] in out for r in read_front(url, "m", "edge"))

    # raw medians far from the stored ones, with the fp32 baseline moved alike: the same ratio, no change
    monkeypatch.setattr(rem, "measure_many", measured(lambda n: 7.0 / ratio(n), 7.0))
    out = remeasure_front(result.study, url, digits, [edge])["edge"]
    assert all(r["changed"] is False for r in out.values())
    assert any(abs(r["rel_change"]) > 0.5 for r in out.values())  # what a raw-ms rule would have flagged

    monkeypatch.setattr(rem, "measure_many", lambda paths, p, feed, memory=None: [_m(1.0, key="other")] * len(paths))
    out = remeasure_front(result.study, url, digits, [edge])["edge"]
    assert all(r["comparable"] is False and r["changed"] is None for r in out.values())
    assert math.isfinite(next(iter(out.values()))["median_ms"])
