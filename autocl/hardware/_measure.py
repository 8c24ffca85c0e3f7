"""Latency of ONNX artifacts under a hardware profile, measured with onnxruntime (or OpenVINO's
runtime for an ``execution_provider: OpenVINO`` profile: same protocol, same loop).

Protocol (settings in ``HardwareProfile.measurement``):

1. Take the device's measurement lease (one measurement at a time per machine, see ``_lease``).
2. Open one session per artifact as the profile says (provider and options, intra-op threads, no
   spinning unless asked); with ``affinity`` the threads are pinned to CPUs.
3. Warm-up: untimed runs of each session on the same feed (a batch of the profile's size), at
   least ``warmup`` of them and for at least ``warmup_seconds``.
4. Timed runs with ``perf_counter_ns`` and Python's garbage collector paused. Several artifacts
   are interleaved: one run of each per round, the order rotating every round, so a slow phase of
   the machine hits all of them alike instead of whichever was measured then. A run during which
   the OS preempted the measuring thread (an involuntary context switch: another process took
   the core) is flagged and left out of the statistics, kept in the raw samples.
5. Stop once every artifact has ``min_repeats`` undisturbed samples, ``min_seconds`` of timed runs
   have passed and the 95% confidence interval of every median is within ``target_rel_ci`` of it;
   or after ``repeats`` rounds; or once ``max_seconds`` per artifact have passed (with at least
   ``min_repeats`` rounds).
6. Report per artifact the median (what is ranked on), p90, IQR, mean, a distribution-free 95%
   confidence interval of the median, the samples' coefficient of variation, why it stopped, the
   raw samples with the preempted ones marked, the 1-minute load average, and the device
   fingerprint (``_device``).
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import resource
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Union

import numpy as np
import onnxruntime as ort

from autocl.hardware._device import device_description
from autocl.hardware._lease import DeviceLease
from autocl.hardware._memory import measure_memory
from autocl.hardware._profile import HardwareProfile, MeasurementSettings
from autocl.openvino_session import OPENVINO, OpenVINOSession

Session = Union[ort.InferenceSession, OpenVINOSession]
"""What the protocol times: an onnxruntime session, or an artifact compiled by OpenVINO."""

_OPT_LEVEL = {
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
_NAN = float("nan")


@dataclass(frozen=True)
class Measurement:
    """The latency of one artifact on one profile, with everything needed to trace and compare it."""

    profile: str
    median_ms: float
    p90_ms: float
    iqr_ms: float
    mean_ms: float
    n: int
    batch_size: int
    device: dict = field(default_factory=dict)
    samples_ms: tuple[float, ...] = ()
    ci95_ms: tuple[float, float] = (_NAN, _NAN)
    rel_ci: float = _NAN
    cv: float = _NAN
    stop: str = ""
    warmup: int = 0
    seconds: float = 0.0
    lease_wait_s: float = 0.0
    interleaved: int = 1
    memory: dict | None = None
    agent: str | None = None
    preempted: tuple[int, ...] = ()
    contended: bool = False
    load_1m: float | None = None

    def to_dict(self) -> dict:
        """The measurement as a JSON-ready dict (as stored in the study).

        Returns:
            Every field; samples and CI rounded to 5 decimals, tuples as lists.
        """
        d = asdict(self)
        d["samples_ms"] = [round(s, 5) for s in self.samples_ms]
        d["ci95_ms"] = [round(c, 5) for c in self.ci95_ms]
        d["preempted"] = list(self.preempted)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> Measurement:
        """A measurement from its stored dict (see :meth:`to_dict`).

        Args:
            data: The stored dict; unknown keys are ignored, so newer records load.

        Returns:
            The measurement.
        """
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in data.items() if k in known}
        d["samples_ms"] = tuple(d.get("samples_ms", ()))
        d["ci95_ms"] = tuple(d.get("ci95_ms", (_NAN, _NAN)))
        d["preempted"] = tuple(d.get("preempted", ()))
        return cls(**d)


def median_ci(samples: np.ndarray, z: float = 1.96) -> tuple[float, float]:
    """Distribution-free confidence interval of the median from order statistics.

    The bounds are the samples at the binomial ranks n/2 -/+ z*sqrt(n)/2; below 6 samples, the full
    range.

    Args:
        samples: The samples.
        z: The normal quantile of the confidence level (1.96: 95%).

    Returns:
        ``(low, high)``; NaNs when there are no samples.
    """
    s = np.sort(np.asarray(samples, dtype=float))
    n = len(s)
    if n == 0:
        return _NAN, _NAN
    if n < 6:
        return float(s[0]), float(s[-1])
    half = z * math.sqrt(n) / 2
    lo = max(0, math.floor(n / 2 - half) - 1)
    hi = min(n - 1, math.ceil(n / 2 + half))
    return float(s[lo]), float(s[hi])


def relative_ci(samples: list[float] | np.ndarray) -> float:
    """Half-width of the median's 95% CI as a fraction of the median.

    Args:
        samples: The samples.

    Returns:
        The relative half-width, or NaN when the median is not positive.
    """
    lo, hi = median_ci(np.asarray(samples))
    med = float(np.median(samples))
    return (hi - lo) / 2 / med if med > 0 else _NAN


def session_options(
    threads: int,
    *,
    allow_spinning: bool = False,
    level: str = "all",
    arena: bool = True,
    worker_cpus: list[int] | None = None,
) -> ort.SessionOptions:
    """onnxruntime session options for sequential, single inter-op-thread inference.

    Args:
        threads: The intra-op thread count.
        allow_spinning: Let idle intra-op threads spin.
        level: The graph optimization level (a key of ``_OPT_LEVEL``, e.g. ``all``).
        arena: Enable the CPU memory arena.
        worker_cpus: The CPUs to pin the intra-op worker threads to.

    Returns:
        The session options.
    """
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = _OPT_LEVEL[level]
    opts.enable_cpu_mem_arena = arena
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
    if worker_cpus:  # onnxruntime pins threads 2..n itself; its ids count processors from 1
        opts.add_session_config_entry("session.intra_op_thread_affinities", ";".join(str(c + 1) for c in worker_cpus))
    return opts


def pinned_cpus(profile: HardwareProfile) -> list[int] | None:
    """The CPUs the profile's threads are pinned to.

    ``auto`` takes the last usable ones: CPU 0 usually serves most interrupts and housekeeping.

    Args:
        profile: The profile (its ``affinity`` and ``threads``).

    Returns:
        The CPUs, or None (no pinning, or ``auto`` with fewer usable CPUs than threads).
    """
    if profile.affinity == "none" or not hasattr(os, "sched_getaffinity"):
        return None
    if profile.affinity == "auto":
        usable = sorted(os.sched_getaffinity(0))
        return usable[-profile.threads :] if len(usable) >= profile.threads else None
    return list(profile.affinity)


def open_session(
    path: str | Path, profile: HardwareProfile, *, threads: int | None = None, cpus: list[int] | None = None
) -> Session:
    """An onnxruntime session configured as ``profile`` says (an OpenVINO one for its runtime).

    Args:
        path: The ONNX model.
        profile: Gives the execution provider and its options, threads, spinning, graph optimization
            level and memory arena.
        threads: Overrides the profile's thread count (for evaluation; never pinned).
        cpus: The CPUs of the intra-op threads: the worker threads are pinned to all but the first
            (the caller pins itself); ignored when ``threads`` is given.

    Returns:
        The inference session.
    """
    if profile.execution_provider == OPENVINO:  # OpenVINO pins its own threads (ENABLE_CPU_PINNING), or not
        return OpenVINOSession(path, dict(profile.provider_options), threads or profile.threads)
    opts = session_options(
        threads or profile.threads,
        allow_spinning=profile.allow_spinning,
        level=profile.graph_optimization,
        arena=profile.enable_cpu_mem_arena,
        worker_cpus=cpus[1:] if cpus and threads is None else None,
    )
    providers = [(profile.execution_provider, dict(profile.provider_options))]
    return ort.InferenceSession(str(path), sess_options=opts, providers=providers)


@contextlib.contextmanager
def _pin_calling_thread(cpus: list[int] | None) -> Iterator[None]:
    if not cpus:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpus[0]})  # pid 0: this thread only, on Linux
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


_RUSAGE_THREAD = getattr(resource, "RUSAGE_THREAD", None)


def _preemptions() -> int:
    """Involuntary context switches of this thread so far (0 where the OS does not say)."""
    return resource.getrusage(_RUSAGE_THREAD).ru_nivcsw if _RUSAGE_THREAD is not None else 0


@dataclass
class Series:
    """One session's timed runs: every sample in order, and which ones the OS preempted."""

    samples: list[float] = field(default_factory=list)
    preempted: list[int] = field(default_factory=list)
    clean: list[float] = field(default_factory=list)

    def add(self, ms: float, preempted: bool) -> None:
        if preempted:
            self.preempted.append(len(self.samples))
        else:
            self.clean.append(ms)
        self.samples.append(ms)

    def used(self, minimum: int) -> tuple[list[float], bool]:
        """The samples the statistics use: the clean ones, or all of them (``contended``) when
        fewer than ``minimum`` ran undisturbed."""
        return (self.clean, False) if len(self.clean) >= minimum else (self.samples, True)


def _warm_up(sess: Session, feed: dict[str, np.ndarray], settings: MeasurementSettings) -> None:
    start, runs = time.perf_counter(), 0
    while runs < settings.warmup or time.perf_counter() - start < settings.warmup_seconds:
        sess.run(None, feed)
        runs += 1


def time_interleaved(
    sessions: Sequence[Session], feed: dict[str, np.ndarray], settings: MeasurementSettings
) -> tuple[list[Series], str]:
    """Warm up each session, then time rounds of one run per session (order rotating) until the stopping rule holds.

    A run during which the OS preempted the measuring thread (an involuntary context switch) is
    kept in the series but flagged: it measured the machine's other work, not the model.

    Args:
        sessions: The sessions to time.
        feed: One batch of inputs.
        settings: The warm-up, repeats and stopping rule.

    Returns:
        ``(series, stop)``: each session's series, and why the timing stopped.
    """
    k = len(sessions)
    for sess in sessions:
        _warm_up(sess, feed, settings)
    series = [Series() for _ in range(k)]
    start = time.perf_counter()
    deadline, minimum_until = start + settings.max_seconds * k, start + settings.min_seconds * k
    clock = time.perf_counter_ns
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection inside a timed run is the process's noise, not the model's latency
    try:
        rounds, next_check = 0, settings.min_repeats
        while True:
            for j in range(k):
                i = (rounds + j) % k
                c0 = _preemptions()
                t0 = clock()
                sessions[i].run(None, feed)
                t1 = clock()
                series[i].add((t1 - t0) / 1e6, _preemptions() != c0)
            rounds += 1
            if rounds >= settings.repeats:
                return series, "repeats"
            now = time.perf_counter()
            if rounds >= settings.min_repeats and now >= deadline:
                return series, "time_cap"
            if (
                settings.target_rel_ci > 0
                and rounds >= next_check
                and now >= minimum_until
                and min(len(s.clean) for s in series) >= max(6, settings.min_repeats)
            ):
                if all(relative_ci(s.clean) <= settings.target_rel_ci for s in series):
                    return series, "converged"
                next_check = rounds + max(1, rounds // 16)  # checks cost a sort: space them out
    finally:
        if gc_was_enabled:
            gc.enable()


def summarize(
    series: Series,
    *,
    profile: HardwareProfile,
    device: dict,
    stop: str,
    seconds: float,
    lease_wait_s: float,
    interleaved: int,
    memory: dict | None = None,
) -> Measurement:
    """The statistics of one series.

    They are computed on its undisturbed samples (all of them when too few were, then ``contended``);
    ``samples_ms`` keeps every sample, ``preempted`` the indices of the disturbed ones.

    Args:
        series: One session's timed runs.
        profile: The profile measured on (its ``measurement`` settings).
        device: The device description (see :func:`device_description`).
        stop: Why the timing stopped.
        seconds: How long the timing took.
        lease_wait_s: How long the device's lease was waited for.
        interleaved: How many artifacts were timed in alternation.
        memory: The memory measurement, if one was made.

    Returns:
        The ``Measurement``.
    """
    used, contended = series.used(max(3, profile.measurement.min_repeats // 2))
    arr = np.asarray(used, dtype=float)
    q25, q50, q75, q90 = np.percentile(arr, [25, 50, 75, 90])
    lo, hi = median_ci(arr)
    mean = float(arr.mean())
    return Measurement(
        profile=profile.name,
        median_ms=float(q50),
        p90_ms=float(q90),
        iqr_ms=float(q75 - q25),
        mean_ms=mean,
        n=len(arr),
        batch_size=profile.batch_size,
        device=device,
        samples_ms=tuple(series.samples),
        ci95_ms=(lo, hi),
        rel_ci=(hi - lo) / 2 / float(q50) if q50 > 0 else _NAN,
        cv=float(arr.std(ddof=1) / mean) if len(arr) > 1 and mean > 0 else _NAN,
        stop=stop,
        warmup=profile.measurement.warmup,
        seconds=round(seconds, 4),
        lease_wait_s=round(lease_wait_s, 4),
        interleaved=interleaved,
        memory=memory,
        preempted=tuple(series.preempted),
        contended=contended,
        load_1m=round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    )


def memory_flags(memory: bool | Sequence[bool], n: int) -> list[bool]:
    """Which of ``n`` artifacts get their memory measured: one flag for all, or one each."""
    if isinstance(memory, bool):
        flags = [memory] * n
    elif isinstance(memory, (list, tuple)) and all(isinstance(m, bool) for m in memory):
        flags = list(memory)
    else:
        raise ValueError("memory must be true/false, or a list of one true/false per artifact")
    if len(flags) != n:
        raise ValueError(f"memory gives {len(flags)} flag(s) for {n} artifact(s)")
    return flags


def measure_local(
    paths: Sequence[str | Path],
    profile: HardwareProfile,
    feed: dict[str, np.ndarray],
    *,
    memory: bool | Sequence[bool] = False,
) -> list[Measurement]:
    """Measure the artifacts here, interleaved, holding the device's lease.

    Args:
        paths: The ONNX artifacts.
        profile: A local profile: how to run and time the sessions.
        feed: One batch of inputs of the profile's shapes.
        memory: Whose memory is measured too: one flag, or one per artifact.

    Returns:
        One ``Measurement`` per artifact, in the order of ``paths``.

    Raises:
        ProfileError: This machine cannot run the profile, the feed's shapes differ from the profile's
            ``input_shapes``, or the device's lease is not obtained in time.
    """
    flags = memory_flags(memory, len(paths))
    profile.check_available()
    profile.check_feed(feed)
    settings = profile.measurement
    with DeviceLease(timeout_s=settings.lease_timeout_s) as lease:
        t0 = time.perf_counter()
        cpus = pinned_cpus(profile)
        sessions = [open_session(p, profile, cpus=cpus) for p in paths]
        with _pin_calling_thread(cpus):
            series, stop = time_interleaved(sessions, feed, settings)
        seconds = time.perf_counter() - t0
        del sessions
        mems = [measure_memory(p, profile, feed) if flag else None for p, flag in zip(paths, flags, strict=False)]
    device = device_description(profile, pinned=cpus)
    return [
        summarize(
            s,
            profile=profile,
            device=device,
            stop=stop,
            seconds=seconds,
            lease_wait_s=lease.waited_s,
            interleaved=len(paths),
            memory=m,
        )
        for s, m in zip(series, mems, strict=False)
    ]
