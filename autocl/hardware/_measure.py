"""Latency of an ONNX artifact under a hardware profile, measured with onnxruntime.

Protocol: one session configured as the profile says (provider, intra-op threads, no spinning
unless asked), a fixed random input of the profile's batch size, ``warmup`` untimed runs, then
timed runs with ``perf_counter_ns``. Reported: median (the robust statistic ranked on), p90,
interquartile range (the spread), and every raw sample.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from autocl.hardware._profile import HardwareProfile

_OPT_LEVEL = {
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


@dataclass(frozen=True)
class Measurement:
    profile: str
    median_ms: float
    p90_ms: float
    iqr_ms: float
    mean_ms: float
    n: int
    batch_size: int
    device: dict = field(default_factory=dict)
    samples_ms: tuple[float, ...] = ()

    def to_dict(self) -> dict:
        d = asdict(self)
        d["samples_ms"] = [round(s, 5) for s in self.samples_ms]
        return d


def session_options(threads: int, *, allow_spinning: bool = False, level: str = "all") -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = _OPT_LEVEL[level]
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
    return opts


def open_session(path: str | Path, profile: HardwareProfile, *, threads: int | None = None) -> ort.InferenceSession:
    opts = session_options(threads or profile.threads, allow_spinning=profile.allow_spinning,
                           level=profile.graph_optimization)
    providers = [(profile.execution_provider, dict(profile.provider_options))]
    return ort.InferenceSession(str(path), sess_options=opts, providers=providers)


def device_description(profile: HardwareProfile) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "onnxruntime": ort.__version__,
        "execution_provider": profile.execution_provider, "threads": profile.threads,
    }


def measure_latency(path: str | Path, profile: HardwareProfile, feed: dict[str, np.ndarray]) -> Measurement:
    """Measure the latency of running ``feed`` (one batch of the profile's size, see
    ``Workload.sample_feed``) through the artifact on ``profile``."""
    sess = open_session(path, profile)
    settings = profile.measurement
    for _ in range(settings.warmup):
        sess.run(None, feed)
    samples: list[float] = []
    deadline = time.perf_counter() + settings.max_seconds
    while len(samples) < settings.repeats and (len(samples) < settings.min_repeats or time.perf_counter() < deadline):
        t0 = time.perf_counter_ns()
        sess.run(None, feed)
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    arr = np.asarray(samples)
    q25, q50, q75, q90 = np.percentile(arr, [25, 50, 75, 90])
    return Measurement(
        profile=profile.name, median_ms=float(q50), p90_ms=float(q90), iqr_ms=float(q75 - q25),
        mean_ms=float(arr.mean()), n=len(samples), batch_size=profile.batch_size,
        device=device_description(profile), samples_ms=tuple(float(s) for s in samples),
    )
