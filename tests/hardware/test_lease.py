"""One measurement at a time per device, across threads and processes, surviving crashes."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from autocl.errors import ProfileError
from autocl.hardware import DeviceLease, measure_latency, profile_from_dict

from tests.conftest import ROOT
from tests.hardware.conftest import feed_for


def test_a_second_holder_waits_for_the_first(tmp_path):
    held = threading.Event()

    def hold():
        with DeviceLease("dev", directory=tmp_path):
            held.set()
            time.sleep(0.6)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    with DeviceLease("dev", directory=tmp_path, timeout_s=10) as lease:
        assert lease.waited_s >= 0.2
    t.join()


def test_the_lease_is_reentrant_in_one_thread(tmp_path):
    with DeviceLease("dev", directory=tmp_path, timeout_s=0.5):
        with DeviceLease("dev", directory=tmp_path, timeout_s=0.5) as inner:
            assert inner.waited_s == 0
        with DeviceLease("dev", directory=tmp_path, timeout_s=0.5):
            pass


def test_a_killed_holder_releases_the_lease_and_a_live_one_names_itself(tmp_path):
    code = ("import sys, time; from autocl.hardware import DeviceLease; "
            f"l = DeviceLease('dev', directory=__import__('pathlib').Path({str(tmp_path)!r})).__enter__(); "
            "print('held', flush=True); time.sleep(120)")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(ProfileError) as exc:
            with DeviceLease("dev", directory=tmp_path, timeout_s=0.3):
                pass
        assert f"pid {child.pid}" in str(exc.value) and "lease_timeout_s" in str(exc.value)
        child.send_signal(signal.SIGKILL)  # a crashed worker: no cleanup code runs
        child.wait(10)
        t0 = time.monotonic()
        with DeviceLease("dev", directory=tmp_path, timeout_s=5):
            assert time.monotonic() - t0 < 2
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)


def test_measurements_in_parallel_threads_never_overlap(small_and_large, monkeypatch, tmp_path):
    import autocl.hardware._measure as measure_mod

    monkeypatch.setenv("AUTOCL_LEASE_DIR", str(tmp_path))
    spans = []
    real = measure_mod.time_interleaved

    def spy(*args, **kwargs):
        start = time.monotonic()
        out = real(*args, **kwargs)
        spans.append((start, time.monotonic()))
        return out

    monkeypatch.setattr(measure_mod, "time_interleaved", spy)
    prof = profile_from_dict({"name": "t", "batch_size": 4, "measurement": {
        "warmup": 1, "repeats": 40, "min_repeats": 40, "target_rel_ci": 0, "memory": False}})
    threads = [threading.Thread(target=measure_latency, args=(small_and_large[1], prof, feed_for())) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spans.sort()
    assert len(spans) == 3
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))
