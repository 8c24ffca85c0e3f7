"""The measurement protocol: stopping rules, interleaving, statistics, pinning, fingerprint."""

import gc
import os
import time

import numpy as np
import pytest

from autocl.hardware import (
    Measurement, MeasurementSettings, comparable, measure_latency, measure_many, median_ci, profile_from_dict,
    summarize, time_interleaved,
)

from tests.hardware.conftest import feed_for


def profile(**kw):
    settings = {"warmup": 2, "warmup_seconds": 0, "repeats": 30, "min_repeats": 5, "min_seconds": 0, "max_seconds": 5,
                "target_rel_ci": 0, "memory": False,
                **kw.pop("measurement", {})}
    return profile_from_dict({"name": "t", "batch_size": 4, "measurement": settings, **kw})


def test_latency_is_measured_with_warmup_repeats_and_spread(digits, tmp_path):
    from autocl.compress import export_onnx

    path = export_onnx(digits.model, digits.example_inputs(), tmp_path / "m.onnx")
    prof = profile(batch_size=2, measurement={"warmup": 1, "repeats": 7, "min_repeats": 3})
    m = measure_latency(path, prof, digits.sample_feed(prof.batch_size))
    assert len(m.samples_ms) == 7 and m.stop == "repeats"
    assert m.n == 7 - len(m.preempted) or (m.contended and m.n == 7)  # preempted runs are left out
    assert min(m.samples_ms) <= m.ci95_ms[0] <= m.median_ms <= m.ci95_ms[1] <= max(m.samples_ms)
    assert m.median_ms <= m.p90_ms <= max(m.samples_ms)
    assert m.iqr_ms >= 0 and m.batch_size == 2 and m.cv >= 0 and m.rel_ci >= 0
    assert m.device["onnxruntime"] and m.device["execution_provider"] == "CPUExecutionProvider"


class FakeSession:
    """Stands in for an inference session: records the order of runs and the GC state."""

    def __init__(self, name, log):
        self.name, self.log = name, log

    def run(self, outputs, feed):
        self.log.append((self.name, gc.isenabled()))


def test_candidates_are_interleaved_in_rotating_order_with_gc_paused():
    log = []
    sessions = [FakeSession(n, log) for n in "abc"]
    settings = MeasurementSettings(warmup=1, warmup_seconds=0, repeats=4, min_repeats=3, target_rel_ci=0)
    was_enabled = gc.isenabled()
    samples, stop = time_interleaved(sessions, {}, settings)
    assert stop == "repeats" and [len(s.samples) for s in samples] == [4, 4, 4]
    timed = [name for name, _ in log[3:]]  # after one warm-up run each
    rounds = [timed[i:i + 3] for i in range(0, 12, 3)]
    assert rounds == [list("abc"), list("bca"), list("cab"), list("abc")]
    assert not any(enabled for _, enabled in log[3:]) and gc.isenabled() == was_enabled


def test_preempted_runs_are_kept_but_left_out_of_the_statistics(monkeypatch):
    import autocl.hardware._measure as measure_mod

    switches = {"n": 0}

    class Disturbed:  # every third run is preempted by "another process" and takes 10x longer
        runs = 0

        def run(self, outputs, feed):
            Disturbed.runs += 1
            if Disturbed.runs % 3 == 0:
                switches["n"] += 1
                time.sleep(0.01)
            else:
                time.sleep(0.001)

    monkeypatch.setattr(measure_mod, "_preemptions", lambda: switches["n"])
    settings = MeasurementSettings(warmup=0, warmup_seconds=0, repeats=30, min_repeats=6, min_seconds=0,
                                   target_rel_ci=0)
    (series,), stop = time_interleaved([Disturbed()], {}, settings)
    assert len(series.samples) == 30 and len(series.preempted) == 10
    m = summarize(series, profile=profile(measurement={"min_repeats": 6}), device={}, stop=stop, seconds=0,
                  lease_wait_s=0, interleaved=1)
    assert m.n == 20 and not m.contended and m.median_ms < 5 and max(m.samples_ms) >= 10
    assert list(m.preempted) == series.preempted and all(m.samples_ms[i] >= 10 for i in m.preempted)
    few = measure_mod.Series()
    for i in range(10):
        few.add(10.0 + i, preempted=i > 1)
    crowded = summarize(few, profile=profile(measurement={"min_repeats": 10}), device={}, stop=stop, seconds=0,
                        lease_wait_s=0, interleaved=1)
    assert crowded.contended and crowded.n == 10  # too few undisturbed runs: all of them, flagged


def test_timed_runs_last_at_least_min_seconds(small_and_large):
    m = measure_latency(small_and_large[1], profile(measurement={"repeats": 1_000_000, "min_seconds": 0.2,
                                                                 "target_rel_ci": 0.5}), feed_for())
    assert m.stop == "converged" and sum(m.samples_ms) / 1000 >= 0.12  # the rest: timing between runs


def test_the_time_cap_stops_after_min_repeats_and_the_ci_rule_stops_early(small_and_large):
    small, _ = small_and_large
    capped = measure_latency(small, profile(measurement={"repeats": 100_000, "min_repeats": 8, "max_seconds": 0.01}),
                             feed_for())
    assert capped.stop == "time_cap" and 8 <= len(capped.samples_ms) < 100_000
    loose = measure_latency(small, profile(measurement={"repeats": 5000, "min_repeats": 6, "target_rel_ci": 0.5}),
                            feed_for())
    assert loose.stop == "converged" and loose.n < 5000 and loose.rel_ci <= 0.5


def test_interleaved_measurement_ranks_a_slow_and_a_fast_artifact(small_and_large):
    small, large = small_and_large
    fast, slow = measure_many([small, large], profile(), feed_for())
    assert len(fast.samples_ms) == len(slow.samples_ms) and fast.interleaved == slow.interleaved == 2
    assert slow.median_ms > 2 * fast.median_ms
    assert fast.device == slow.device and fast.device["key"]


def test_median_ci_covers_the_true_median_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    true_median = np.log(2)  # of an exponential with rate 1, a skewed latency-like distribution
    hits = 0
    for _ in range(2000):
        lo, hi = median_ci(rng.exponential(size=60))
        hits += lo <= true_median <= hi
    assert 0.93 <= hits / 2000 <= 0.985


def test_the_fingerprint_tells_comparable_measurements_apart(small_and_large):
    small, _ = small_and_large
    a = measure_latency(small, profile(), feed_for())
    b = measure_latency(small, profile(), feed_for())
    c = measure_latency(small, profile(threads=2), feed_for())
    for key in ("cpu", "cpu_flags", "onnxruntime", "execution_provider", "provider_options", "threads", "key"):
        assert key in a.device
    assert comparable(a.device, b.device) and not comparable(a.device, c.device)


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="thread affinity is Linux-only")
def test_pinning_pins_the_measuring_thread_and_restores_it(small_and_large, monkeypatch):
    import autocl.hardware._measure as measure_mod

    cpu = sorted(os.sched_getaffinity(0))[-1]
    before = os.sched_getaffinity(0)
    seen = []
    real = measure_mod.time_interleaved

    def spy(*args, **kwargs):
        seen.append(os.sched_getaffinity(0))
        return real(*args, **kwargs)

    monkeypatch.setattr(measure_mod, "time_interleaved", spy)
    m = measure_latency(small_and_large[0], profile(affinity=[cpu]), feed_for())
    assert seen == [{cpu}] and os.sched_getaffinity(0) == before and m.device["affinity"] == [cpu]


def test_a_measurement_round_trips_through_its_stored_dict(small_and_large):
    m = measure_latency(small_and_large[0], profile(), feed_for())
    back = Measurement.from_dict(m.to_dict())
    assert back.median_ms == m.median_ms and back.n == m.n and back.device == m.device
    assert back.samples_ms == pytest.approx(m.samples_ms, abs=1e-5) and back.preempted == m.preempted
    assert len(m.to_dict()["samples_ms"]) == len(m.samples_ms) == m.n + (0 if m.contended else len(m.preempted))
