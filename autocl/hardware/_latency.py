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

    Args:
        paths: The ONNX artifacts.
        profile: How (and where: ``profile.measure``) to measure.
        feed: One batch of inputs of the profile's batch size (see ``Workload.sample_feed``).
        memory: Whose memory to measure too: one flag, or one per artifact (default: all when
            ``profile.measurement.memory`` says so).

    Returns:
        One ``Measurement`` per artifact, in the order of ``paths``.

    Raises:
        ProfileError: The remote agent cannot be reached or refuses the request.
    """
    if memory is None:
        memory = profile.measurement.memory
    if profile.measure == "remote":
        return measure_remote(paths, profile, feed, memory=memory)
    return measure_local(paths, profile, feed, memory=memory)


def measure_latency(
    path: str | Path, profile: HardwareProfile, feed: dict[str, np.ndarray], *, memory: bool | None = None
) -> Measurement:
    """Measure the latency of running ``feed`` through the artifact on ``profile``.

    Args:
        path: The ONNX artifact.
        profile: How (and where) to measure.
        feed: One batch of the profile's size (see ``Workload.sample_feed``).
        memory: Measure its memory too (see :func:`measure_many`).

    Returns:
        The ``Measurement``.

    Raises:
        ProfileError: See :func:`measure_many`.
    """
    return measure_many([path], profile, feed, memory=memory)[0]
