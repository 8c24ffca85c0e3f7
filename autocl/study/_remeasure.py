"""Re-measure each profile's Pareto front, so the front is not an artifact of one noisy run.

The front's artifacts and the fp32 baseline are measured again, interleaved, on each profile. A
member's latency *changed* when its new median differs from the stored one by more than the
profile's ``measurement.noise_floor`` and the two 95% confidence intervals do not overlap.
Measurements on another device (different fingerprint key) are not compared. Results are stored
with the front's rows (``measurement['remeasure']``) and in ``study.user_attrs['remeasured']``.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import optuna

from autocl.compress import Compressor
from autocl.compress.pipeline import file_sha256
from autocl.config import CompressionConfig
from autocl.hardware import HardwareProfile, Measurement, comparable, measure_many, median_ci
from autocl.runtime import cache_dir
from autocl.study._front import annotate_front, compute_front
from autocl.workloads import Workload


def compare(old: dict, new: Measurement, noise_floor: float) -> dict:
    """How a new measurement relates to a stored one (``Measurement.to_dict()``)."""
    rel = new.median_ms / old["median_ms"] - 1
    old_ci = old.get("ci95_ms")
    if not old_ci or not all(math.isfinite(c) for c in old_ci):
        old_ci = median_ci(np.asarray(old.get("samples_ms") or [old["median_ms"]]))
    overlap = new.ci95_ms[0] <= old_ci[1] and old_ci[0] <= new.ci95_ms[1]
    same = comparable(old.get("device"), new.device)
    return {
        "median_ms": new.median_ms,
        "ci95_ms": [round(c, 5) for c in new.ci95_ms],
        "n": new.n,
        "stored_median_ms": old["median_ms"],
        "rel_change": round(rel, 4),
        "comparable": same,
        "changed": (abs(rel) > noise_floor and not overlap) if same else None,
        "device_key": new.device.get("key"),
    }


def _artifact(trial: optuna.trial.FrozenTrial, compressor: Compressor) -> tuple[Path, bool]:
    """The trial's artifact: its stored file when its hash still matches, else rebuilt (cached)."""
    stored = trial.user_attrs.get("artifact_path")
    if stored and Path(stored).is_file() and file_sha256(Path(stored)) == trial.user_attrs["artifact_sha256"]:
        return Path(stored), False
    art = compressor.artifact(CompressionConfig.from_dict(trial.user_attrs["config"], source=f"trial {trial.number}"))
    return art.path, art.sha256 != trial.user_attrs["artifact_sha256"]


def remeasure_front(
    study: optuna.Study,
    storage: str,
    workload: Workload,
    profiles: list[HardwareProfile],
    *,
    compressor: Compressor | None = None,
) -> dict[str, dict[int, dict]]:
    """Re-measure every profile's front.

    Args:
        study: The study.
        storage: Its database URL (the re-measurements are stored with the fronts' rows).
        workload: The study's workload.
        profiles: The profiles whose fronts to re-measure.
        compressor: Builds the baseline and the artifacts (default: one on the artifact cache).

    Returns:
        ``{profile: {trial: comparison}}`` (see ``compare``).
    """
    compressor = compressor or Compressor(workload, cache_dir())
    baseline = compressor.baseline()
    out: dict[str, dict[int, dict]] = {}
    for p in profiles:
        trials = compute_front(study, p.name)
        if not trials:
            continue
        arts = [_artifact(t, compressor) for t in trials]
        *again, base = measure_many([a for a, _ in arts] + [baseline], p, workload.sample_feed(p.batch_size))
        result = {}
        for t, (_, rebuilt), m in zip(trials, arts, again, strict=False):
            result[t.number] = {
                **compare(t.user_attrs["measurements"][p.name], m, p.measurement.noise_floor),
                "speedup": round(base.median_ms / m.median_ms, 4),
                "rebuilt_differs": rebuilt,
            }
        annotate_front(storage, study.study_name, p.name, result)
        out[p.name] = result
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    record = dict(study.user_attrs.get("remeasured", {}))
    record.update({name: {"at": now, "members": {str(k): v for k, v in r.items()}} for name, r in out.items()})
    study.set_user_attr("remeasured", record)
    return out
