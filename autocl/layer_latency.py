"""Each layer's share of a model's latency, for the report and the model card.

The measurement is ``autocl.hardware.layer_latency_shares`` (onnxruntime's per-node profiler);
this module only finds what to measure: the front members' artifacts in the cache (through
``autocl.compress.CacheLayout``), the graph nodes of each layer (``autocl.compress.layer_nodes``)
and real inputs from the workload. The report reads the results and measures nothing.
"""

from __future__ import annotations

from pathlib import Path

from autocl.hardware import HardwareProfile, layer_latency_shares, profile_from_dict
from autocl.report import StudyData, cached_artifact
from autocl.workloads import Workload


def artifact_layer_shares(
    path: Path, workload: Workload, profile: HardwareProfile, layers: tuple[str, ...]
) -> dict[str, float]:
    """The share of the artifact's latency spent in each of ``layers`` (and in ``other``).

    Measured here with a batch of the workload's inputs; empty for a remote profile (its device's
    layers cannot be profiled from here) and for OpenVINO's runtime (the profiler is onnxruntime's).

    Args:
        path: the ONNX artifact.
        workload: gives the inputs (``sample_feed`` at the profile's batch size).
        profile: how the session runs.
        layers: the workload's layer names.

    Returns:
        ``{layer: share}``, shares summing to 1, or ``{}``.
    """
    from autocl.compress import layer_nodes

    if profile.measure != "local" or profile.runtime != "onnxruntime":
        return {}
    return layer_latency_shares(
        path, profile, workload.sample_feed(profile.batch_size), layer_nodes(path, list(layers))
    )


def measure_layer_shares(
    data: StudyData, workload: Workload, cache_root: Path | None = None
) -> tuple[dict[int, dict[str, float]], str]:
    """Time the layers of each front member of ``data`` on the study's profile.

    Members whose artifacts are not in the cache, and every member when the profile is remote or its
    settings are not stored, are left out and explained in the note.

    Args:
        data: the study on one profile.
        workload: the study's workload (checked by the caller).
        cache_root: the artifact cache (default: ``<AUTOCL_HOME>/cache``).

    Returns:
        ``(shares, note)``: ``shares[trial][layer]``, and why some members were not timed ("" if all were).
    """
    if cache_root is None:
        from autocl.runtime import cache_dir

        cache_root = cache_dir()
    if not data.profile_settings:
        return {}, f"the study does not store the settings of profile {data.profile!r}, so layers were not timed"
    profile = profile_from_dict(data.profile_settings, source=f"study {data.study_name!r}: profile")
    if profile.measure != "local":
        return {}, f"profile {data.profile!r} measures on a remote device, whose layers cannot be profiled from here"
    if profile.runtime != "onnxruntime":
        return {}, f"profile {data.profile!r} runs on OpenVINO; layers are timed with onnxruntime's profiler only"
    shares, missing = {}, []
    for t in data.front:
        path = cached_artifact(data, cache_root, t)
        if path is None:
            missing.append(t.number)
            continue
        shares[t.number] = artifact_layer_shares(path, workload, profile, data.layers)
    note = f"artifacts of trial(s) {', '.join(map(str, missing))} are not in the cache; not timed" if missing else ""
    return shares, note


__all__ = ["artifact_layer_shares", "measure_layer_shares"]
