"""Several hardware targets in one search.

Each trial's artifact is built once and measured on every profile, interleaved with the fp32
baseline (so the speed-up is a ratio of two numbers taken in the same conditions). Budgets become
constraint values, ``value / budget - 1`` (<= 0 is feasible), which Optuna's sampler stores in
``trial.system_attrs['constraints']``. The search space is narrowed to the precisions at least one
target runs well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from autocl.errors import ConfigError
from autocl.hardware import HardwareProfile, Measurement, measure_many
from autocl.space import SearchSpace
from autocl.workloads import Workload


@dataclass(frozen=True)
class TargetResult:
    """One artifact on one profile: its measurement, the baseline's taken alongside it, and the flag."""

    measurement: Measurement
    baseline: Measurement
    speedup: float
    not_faster: bool | None  # None: not compressed (unpruned fp32), nothing to be faster with


def as_profiles(profile: HardwareProfile | Sequence[HardwareProfile]) -> list[HardwareProfile]:
    """A list of profiles with distinct names; the first is the primary (Optuna's latency objective)."""
    profiles = [profile] if isinstance(profile, HardwareProfile) else list(profile)
    if not profiles:
        raise ConfigError("give at least one hardware profile (--profile FILE)")
    names = [p.name for p in profiles]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"profile name(s) {', '.join(dupes)} given twice; every profile needs its own name",
                          field="name")
    return profiles


def narrow_space(space: SearchSpace, profiles: list[HardwareProfile]) -> SearchSpace:
    """The space restricted to precisions at least one profile runs well (``profile.precisions``)."""
    allowed = {p for prof in profiles for p in prof.precisions}
    q = space.quant
    precisions = [p for p in q.precisions if p in allowed]
    if not precisions:
        raise ConfigError(f"none of the space's precisions {q.precisions} is run well by the profiles "
                          f"({', '.join(f'{p.name}: {p.precisions}' for p in profiles)})",
                          file=space.source, field="quant.precisions")
    layers = q.layers
    if isinstance(layers, dict):
        layers = {n: [c for c in choices if c in allowed] for n, choices in layers.items()}
        for n, choices in layers.items():
            if not choices:
                raise ConfigError(f"no precision of layer {n!r} is run well by the profiles",
                                  file=space.source, field=f"quant.layers.{n}")
    if precisions == list(q.precisions) and layers == q.layers:
        return space
    return space.model_copy(update={"quant": q.model_copy(update={"precisions": precisions, "layers": layers})})


def _noise(m: Measurement) -> float:
    return m.rel_ci if math.isfinite(m.rel_ci) else 0.0


def measure_targets(artifact: Path, baseline: Path, profiles: list[HardwareProfile], workload: Workload, *,
                    compressed: bool) -> dict[str, TargetResult]:
    """Measure ``artifact`` and ``baseline`` in alternation on every profile (memory of the artifact
    only). ``not_faster``: a compressed artifact whose median is not below the baseline's by more
    than the larger relative CI of the two."""
    out = {}
    for p in profiles:
        cand, base = measure_many([artifact, baseline], p, workload.sample_feed(p.batch_size),
                                  memory=[p.measurement.memory, False])
        slower = cand.median_ms >= base.median_ms * (1 - max(_noise(cand), _noise(base)))
        out[p.name] = TargetResult(cand, base, base.median_ms / cand.median_ms, slower if compressed else None)
    return out


def measure_baselines(baseline: Path, profiles: list[HardwareProfile], workload: Workload) -> dict[str, Measurement]:
    return {p.name: measure_many([baseline], p, workload.sample_feed(p.batch_size), memory=p.measurement.memory)[0]
            for p in profiles}


def constraint_names(profiles: list[HardwareProfile]) -> list[str]:
    return [f"{p.name}:{kind}" for p in profiles for kind, _ in p.budgets.items()]


def constraint_values(profiles: list[HardwareProfile], results: dict[str, TargetResult], size_bytes: int) -> list[float]:
    """``value / budget - 1`` per budget, in ``constraint_names`` order: <= 0 meets the budget."""
    values = []
    for p in profiles:
        m = results[p.name].measurement
        for kind, limit in p.budgets.items():
            if kind == "latency_ms":
                value = m.median_ms
            elif kind == "size_mb":
                value = size_bytes / 2**20
            else:
                peak = (m.memory or {}).get("peak_mb")
                value = float(peak) if peak is not None else math.inf
            values.append(value / limit - 1 if math.isfinite(value) else 1e9)
    return values
