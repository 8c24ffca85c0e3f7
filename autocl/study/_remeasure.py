"""Re-measure each profile's Pareto front, so the front is not an artifact of one noisy run.

The front's artifacts and the fp32 baseline are measured again, interleaved, on each profile, and
each member's speed-up is the baseline's median over its own (:func:`autocl.study._record.speedup`).
A member *changed* when its new speed-up differs from the one measured in its trial by more than
the profile's ``measurement.noise_floor`` and the two speed-ups' 95% intervals do not overlap:
ratios measured in alternation, not raw milliseconds taken minutes apart. Measurements on another
device (different fingerprint key) are not compared. Results are kept in
``study.user_attrs['remeasured']`` (a member keeps its latest re-measurement when it leaves the
front), and the front's table is written again from the record, whose comparable latency now
uses them.
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
from autocl.study._front import front_records, write_front
from autocl.study._record import speedup
from autocl.workloads import Workload


def _rel_ci(m: dict) -> float:
    """The relative half-width of a stored measurement's 95% CI of the median."""
    ci = m.get("ci95_ms")
    if not ci or not all(math.isfinite(c) for c in ci):
        ci = median_ci(np.asarray(m.get("samples_ms") or [m["median_ms"]]))
    return (ci[1] - ci[0]) / 2 / m["median_ms"] if m["median_ms"] else 0.0


def _interval(ratio: float, *measurements: dict) -> tuple[float, float]:
    """A speed-up's 95% interval: its two medians' relative half-widths added (a conservative bound)."""
    u = sum(_rel_ci(m) for m in measurements)
    return ratio * (1 - u), ratio * (1 + u)


def compare(old: dict, old_base: dict | None, new: Measurement, new_base: Measurement, noise_floor: float) -> dict:
    """How a member's new speed-up relates to the one of its trial.

    Args:
        old: The member's stored measurement (``Measurement.to_dict()``).
        old_base: The fp32 baseline's, taken in alternation with it in the trial (None: not stored).
        new: The member's new measurement.
        new_base: The fp32 baseline's, taken in alternation with it now.
        noise_floor: The profile's ``measurement.noise_floor``: smaller relative changes never count.

    Returns:
        The comparison: the new median and speed-up, the stored ones, their relative changes and
        whether the speed-up ``changed`` (None on another device or without a stored pair).
    """
    again = speedup(new_base.median_ms, new.median_ms)
    before = speedup(old_base["median_ms"], old["median_ms"]) if old_base else None
    same = comparable(old.get("device"), new.device)
    changed = None
    rel = None
    if same and again is not None and before is not None and old_base:
        rel = again / before - 1
        lo, hi = _interval(again, new.to_dict(), new_base.to_dict())
        old_lo, old_hi = _interval(before, old, old_base)
        changed = abs(rel) > noise_floor and not (lo <= old_hi and old_lo <= hi)
    return {
        "median_ms": new.median_ms,
        "ci95_ms": [round(c, 5) for c in new.ci95_ms],
        "n": new.n,
        "stored_median_ms": old["median_ms"],
        "rel_change": round(new.median_ms / old["median_ms"] - 1, 4),
        "speedup": None if again is None else round(again, 4),
        "stored_speedup": None if before is None else round(before, 4),
        "speedup_change": None if rel is None else round(rel, 4),
        "comparable": same,
        "changed": changed,
        "device_key": new.device.get("key"),
    }


def _artifact(trial: optuna.trial.FrozenTrial, compressor: Compressor) -> tuple[Path, bool]:
    """The trial's artifact: its stored file when its hash still matches, else rebuilt (cached)."""
    stored = trial.user_attrs.get("artifact_path")
    if stored and Path(stored).is_file() and file_sha256(Path(stored)) == trial.user_attrs["artifact_sha256"]:
        return Path(stored), False
    art = compressor.artifact(CompressionConfig.from_dict(trial.user_attrs["config"], source=f"trial {trial.number}"))
    return art.path, art.sha256 != trial.user_attrs.get("artifact_sha256", art.sha256)


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
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    for p in profiles:
        result: dict[int, dict] = {}
        # re-measured speed-ups move the front: a trial that joins it is measured too, in a next round
        for _ in range(ROUNDS):
            front = [r.number for r in front_records(study, p.name) if r.number not in result]
            # other workers completed trials meanwhile: one read before may hold them unfinished, without
            # their measurements
            if any(n not in by_number or by_number[n].state != optuna.trial.TrialState.COMPLETE for n in front):
                by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
            trials = [by_number[n] for n in front]
            if not trials:
                break
            arts = [_artifact(t, compressor) for t in trials]
            *again, base = measure_many([a for a, _ in arts] + [baseline], p, workload.sample_feed(p.batch_size))
            now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
            for t, (_, rebuilt), m in zip(trials, arts, again, strict=False):
                stored_base = (t.user_attrs.get("baseline_measurements") or {}).get(p.name)
                result[t.number] = {
                    **compare(t.user_attrs["measurements"][p.name], stored_base, m, base, p.measurement.noise_floor),
                    "rebuilt_differs": rebuilt,
                    "at": now,
                }
            _store(study, p.name, result, now)
        if result:
            out[p.name] = result
            write_front(storage, study, p.name)
    return out


ROUNDS = 3
"""At most this many re-measuring rounds per profile (the front rarely moves twice)."""


def _store(study: optuna.Study, profile: str, result: dict[int, dict], now: str) -> None:
    """Keep ``result`` in ``study.user_attrs['remeasured'][profile]``. A member keeps its latest
    re-measurement when it leaves the front: dropping it would bring back the trial's own (often
    flattering) speed-up, and the member with it."""
    record = dict(study.user_attrs.get("remeasured", {}))
    members = {**((record.get(profile) or {}).get("members") or {}), **{str(k): v for k, v in result.items()}}
    record[profile] = {"at": now, "members": members}
    study.set_user_attr("remeasured", record)
