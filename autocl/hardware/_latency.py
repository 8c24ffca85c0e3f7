"""Latency of artifacts on a profile, wherever the profile says it is measured: here (``_measure``)
or on the device's latency agent (``_client``). The one entry point the search, re-measurement and
export use; it imports both sides, neither imports it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from autocl.hardware._client import measure_remote
from autocl.hardware._measure import Measurement, measure_local
from autocl.hardware._profile import HardwareProfile


def measure_many(
    paths: Sequence[str | Path],
    profile: HardwareProfile,
    feed: dict[str, np.ndarray],
    *,
    memory: bool | Sequence[bool] | None = None,
) -> list[Measurement]:
    """Measure several artifacts in alternation on ``profile``: here, or on its remote agent.
    ``memory``: whose memory to measure too (default: all when ``measurement.memory`` says so)."""
    if memory is None:
        memory = profile.measurement.memory
    if profile.measure == "remote":
        return measure_remote(paths, profile, feed, memory=memory)
    return measure_local(paths, profile, feed, memory=memory)


def measure_latency(
    path: str | Path, profile: HardwareProfile, feed: dict[str, np.ndarray], *, memory: bool | None = None
) -> Measurement:
    """Measure the latency of running ``feed`` (one batch of the profile's size, see
    ``Workload.sample_feed``) through the artifact on ``profile`` (and its memory, see ``measure_many``)."""
    return measure_many([path], profile, feed, memory=memory)[0]
