"""Several hardware targets in one search.

Each trial's artifact is built once and measured on every profile, interleaved with the fp32
baseline (so the speed-up is a ratio of two numbers taken in the same conditions). Budgets become
constraint values, ``value / budget - 1`` (<= 0 is feasible), which Optuna's sampler stores in
``trial.system_attrs['constraints']``. The search space is narrowed to the precisions at least one
target runs, and what that removed is reported and stored with the study.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from autocl.errors import ConfigError
from autocl.hardware import HardwareProfile, Measurement, measure_many
from autocl.space import SearchSpace
from autocl.study._record import not_faster, speedup
from autocl.workloads import Workload

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class TargetResult:
    """One artifact on one profile: its measurement, the baseline's taken alongside it, and the flag."""

    measurement: Measurement
    baseline: Measurement
    speedup: float
    not_faster: bool | None  # None: not compressed (unpruned fp32), nothing to be faster with


def as_profiles(profile: HardwareProfile | Sequence[HardwareProfile]) -> list[HardwareProfile]:
    """A list of profiles with distinct names; the first is the primary (Optuna's latency objective).

    Args:
        profile: One profile, or several.

    Returns:
        The profiles, as a list.

    Raises:
        ConfigError: No profile is given, or two share a name.
    """
    profiles = [profile] if isinstance(profile, HardwareProfile) else list(profile)
    if not profiles:
        raise ConfigError("give at least one hardware profile (--profile FILE)")
    names = [p.name for p in profiles]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(
            f"profile name(s) {', '.join(dupes)} given twice; every profile needs its own name", field="name"
        )
    return profiles


@dataclass(frozen=True)
class Narrowing:
    """Precisions a space asked for that no profile runs, so the search leaves them out: never
    silently (``line`` is printed, ``to_dict`` stored as the study's ``narrowed`` user attribute)."""

    removed: tuple[str, ...]  # from the model-wide / per-layer precisions
    fallback_removed: tuple[str, ...]  # from quant.fallback.precisions
    profile: str  # the profile(s) that leave them out, by name
    reason: str

    def line(self) -> str:
        """The narrowing in one sentence, for the search's output.

        Returns:
            What was removed for which profile, and why.
        """
        fallback = f"; fallback precisions lose {', '.join(self.fallback_removed)}" if self.fallback_removed else ""
        what = ", ".join(self.removed) or "nothing model-wide"
        return f"space narrowed for profile {self.profile}: removed {what}{fallback} ({self.reason})"

    def to_dict(self) -> dict:
        """The narrowing as a JSON-ready dict.

        Returns:
            ``removed``, ``fallback_removed``, ``profile`` and ``reason``.
        """
        return {
            "removed": list(self.removed),
            "fallback_removed": list(self.fallback_removed),
            "profile": self.profile,
            "reason": self.reason,
        }


def _reason(precisions: list[str], profiles: list[HardwareProfile]) -> str:
    parts = []
    for p in precisions:
        whys = list(dict.fromkeys(prof.left_out(p) for prof in profiles))
        parts.append(f"{p}: {'; '.join(whys)}")
    return "; ".join(parts)


def narrowing(space: SearchSpace, profiles: list[HardwareProfile]) -> tuple[SearchSpace, Narrowing | None]:
    """The space restricted to the precisions at least one profile runs (``profile.precisions``).

    Fallback precisions are narrowed too, fp32 always kept (a fallback layer can always stay fp32).

    Args:
        space: The search space.
        profiles: The hardware profiles.

    Returns:
        ``(space, narrowing)``: the narrowed space, and what was removed with why (None: nothing).

    Raises:
        ConfigError: Nothing is left to search (for the space, or for one of its layers).
    """
    allowed = {p for prof in profiles for p in prof.precisions}
    q = space.quant
    precisions = [p for p in q.precisions if p in allowed]
    if not precisions:
        raise ConfigError(
            f"none of the space's precisions {q.precisions} is run by the profiles "
            f"({', '.join(f'{p.name}: {p.precisions}' for p in profiles)})",
            file=space.source,
            field="quant.precisions",
        )
    asked = list(q.precisions)
    layers = q.layers
    if isinstance(layers, dict):
        asked += [c for choices in layers.values() for c in choices]
        layers = {n: [c for c in choices if c in allowed] for n, choices in layers.items()}
        for n, choices in layers.items():
            if not choices:
                raise ConfigError(
                    f"no precision of layer {n!r} is run by the profiles "
                    f"({', '.join(f'{p.name}: {p.precisions}' for p in profiles)})",
                    file=space.source,
                    field=f"quant.layers.{n}",
                )
    fallback = [p for p in q.fallback.precisions if p in allowed or p == "fp32"] or ["fp32"]
    removed = list(dict.fromkeys(p for p in asked if p not in allowed))
    fallback_removed = [p for p in q.fallback.precisions if p not in fallback]
    if not removed and not fallback_removed:
        return space, None
    note = Narrowing(
        tuple(removed),
        tuple(fallback_removed),
        ", ".join(p.name for p in profiles),
        _reason(list(dict.fromkeys(removed + fallback_removed)), profiles),
    )
    quant = q.model_copy(
        update={
            "precisions": precisions,
            "layers": layers,
            "fallback": q.fallback.model_copy(update={"precisions": fallback}),
        }
    )
    return space.model_copy(update={"quant": quant}), note


def narrow_space(space: SearchSpace, profiles: list[HardwareProfile]) -> SearchSpace:
    """The space restricted to precisions at least one profile runs (see :func:`narrowing`).

    Args:
        space: The search space.
        profiles: The hardware profiles.

    Returns:
        The narrowed space.

    Raises:
        ConfigError: See :func:`narrowing`.
    """
    return narrowing(space, profiles)[0]


def record_narrowing(study: optuna.Study, note: Narrowing | None, reporter=None) -> None:
    """Store ``note`` as the study's ``narrowed`` user attribute (cleared when nothing was removed)
    and show its line: through ``reporter.note`` where the reporter has one, else as a stage."""
    if note is None:
        if study.user_attrs.get("narrowed") is not None:
            study.set_user_attr("narrowed", None)
        return
    study.set_user_attr("narrowed", note.to_dict())
    if reporter is None:
        return
    if hasattr(reporter, "note"):
        reporter.note(note.line())
    else:
        reporter.stage(-1, note.line())


def measure_targets(
    artifact: Path, baseline: Path, profiles: list[HardwareProfile], workload: Workload, *, compressed: bool
) -> dict[str, TargetResult]:
    """Measure ``artifact`` and ``baseline`` in alternation on every profile (memory of the artifact
    only). ``not_faster`` (:func:`autocl.study._record.not_faster`, on a compressed artifact only):
    its median is not below the baseline's by more than the larger relative CI of the two."""
    out = {}
    for p in profiles:
        cand, base = measure_many(
            [artifact, baseline], p, workload.sample_feed(p.batch_size), memory=[p.measurement.memory, False]
        )
        slower = not_faster(cand.to_dict(), base.to_dict())
        out[p.name] = TargetResult(
            cand, base, speedup(base.median_ms, cand.median_ms) or math.nan, slower if compressed else None
        )
    return out


def measure_baselines(baseline: Path, profiles: list[HardwareProfile], workload: Workload) -> dict[str, Measurement]:
    return {
        p.name: measure_many([baseline], p, workload.sample_feed(p.batch_size), memory=p.measurement.memory)[0]
        for p in profiles
    }


def constraint_names(profiles: list[HardwareProfile]) -> list[str]:
    return [f"{p.name}:{kind}" for p in profiles for kind, _ in p.budgets.items()]


def constraint_values(
    profiles: list[HardwareProfile], results: dict[str, TargetResult], size_bytes: int
) -> list[float]:
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
