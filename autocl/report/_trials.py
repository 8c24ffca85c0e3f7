"""Plain data about a study, read-only: every trial classified on one profile, and the feasible front.

A trial is, on the chosen profile, exactly one of:

* ``front``: completed, feasible (every constraint ≤ 0, or none stored), measured on the profile, and
  not dominated on (metric, latency on the profile, size) by another such trial;
* ``dominated``: the same, but another feasible trial is at least as good on all three objectives and
  better on one (the reason names it);
* ``infeasible``: completed but a constraint (a budget) is violated, as Optuna records it
  (``FrozenTrial.constraints``: the ``system_attrs['constraints']`` list or named constraints; > 0
  violates); the reason gives the values;
* ``unmeasured``: completed but never measured on this profile;
* ``failed``: failed, with the error the trial stored;
* ``pending``: running, queued or pruned.

The front is computed here from the trials themselves, so every number shown traces to a trial row.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace

import optuna
from optuna.trial import TrialState

from autocl.errors import StudyError
from autocl.evaluate import metric_drop

FRONT, DOMINATED, INFEASIBLE, UNMEASURED, FAILED, PENDING = (
    "front", "dominated", "infeasible", "unmeasured", "failed", "pending")
STATUSES = (FRONT, DOMINATED, INFEASIBLE, UNMEASURED, FAILED, PENDING)


@dataclass(frozen=True)
class TrialInfo:
    """One trial as the report, the front and the picks see it (latency on ``StudyData.profile``)."""

    number: int
    status: str
    reason: str
    metric: float | None
    latency_ms: float | None
    latency_iqr_ms: float | None
    latency_p90_ms: float | None
    size_kb: float | None
    prune_ratio: float | None
    temperature: float | None
    alpha: float | None
    bits: str
    config: dict = field(default_factory=dict, repr=False)
    params: dict = field(default_factory=dict, repr=False)
    constraints: dict[str, float] = field(default_factory=dict)
    not_faster: bool | None = None
    memory: dict | None = None
    artifact_sha256: str = ""
    student_key: str = ""
    measurement: dict | None = field(default=None, repr=False)
    completed_at: dt.datetime | None = None

    @property
    def measured(self) -> bool:
        return self.latency_ms is not None and self.metric is not None


@dataclass(frozen=True)
class StudyData:
    """A study seen on one profile: its trials classified, its baseline and its layers."""

    study_name: str
    profile: str
    profiles: tuple[str, ...]
    metric_name: str
    higher_is_better: bool
    layers: tuple[str, ...]
    baseline: dict | None
    trials: tuple[TrialInfo, ...]
    layer_choices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sensitivity: dict | None = None
    workload: dict = field(default_factory=dict)
    fingerprint: dict = field(default_factory=dict)
    profile_settings: dict | None = None
    constraint_names: tuple[str, ...] = ()

    @property
    def front(self) -> list[TrialInfo]:
        """The feasible Pareto front on this profile, fastest first."""
        return sorted(self.with_status(FRONT), key=lambda t: (t.latency_ms, t.number))

    def with_status(self, *statuses: str) -> list[TrialInfo]:
        return [t for t in self.trials if t.status in statuses]

    def trial(self, number: int) -> TrialInfo:
        for t in self.trials:
            if t.number == number:
                return t
        raise StudyError(f"study {self.study_name!r} has no trial {number} (trials: 0-{len(self.trials) - 1}); "
                         "'autocl front' lists the front's trial numbers")

    def metric_drop(self, t: TrialInfo) -> float | None:
        """How much worse than the fp32 teacher ``t``'s metric is (positive = worse)."""
        if t.metric is None or not self.baseline or self.baseline.get("metric") is None:
            return None
        return metric_drop(t.metric, self.baseline["metric"], self.higher_is_better)

    def speedup(self, t: TrialInfo) -> float | None:
        base = (self.baseline or {}).get("latency_ms")
        return base / t.latency_ms if base and t.latency_ms else None

    def losses(self, t: TrialInfo) -> tuple[float, float, float]:
        """Objectives as values to minimize: (−metric or metric, latency, size)."""
        return (-t.metric if self.higher_is_better else t.metric, t.latency_ms, t.size_kb)  # type: ignore[operator]


def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """``a`` is at least as good as ``b`` everywhere and better somewhere (all minimized)."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def _profile_dicts(study: optuna.Study) -> list[dict]:
    """The stored profile settings, primary first (``profile`` a dict or a list; ``profiles`` a dict
    by name or a list)."""
    out: list[dict] = []
    for key in ("profile", "profiles"):
        stored = study.user_attrs.get(key)
        items = stored.values() if isinstance(stored, dict) and "name" not in stored else \
            [stored] if isinstance(stored, dict) else stored if isinstance(stored, list) else []
        out += [p for p in items if isinstance(p, dict) and p.get("name")]
    return out


def primary_profile(study: optuna.Study) -> str:
    """The profile the search optimized latency on (the first one given to ``autocl search``)."""
    found = _profile_dicts(study)
    return found[0]["name"] if found else ""


def measured_profiles(study: optuna.Study) -> list[str]:
    """Every profile some completed trial was measured on, the primary (the search's objective) first."""
    seen: dict[str, None] = {}
    primary = primary_profile(study)
    if primary:
        seen[primary] = None
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        for name in t.user_attrs.get("measurements", {}):
            seen[name] = None
    return list(seen)


def _baseline_on(study: optuna.Study, profile: str) -> dict | None:
    """The fp32 teacher's numbers; its latency only where it was measured on ``profile``."""
    per_profile = study.user_attrs.get("baselines")
    if isinstance(per_profile, dict) and isinstance(per_profile.get(profile), dict):
        return per_profile[profile]
    base = study.user_attrs.get("baseline")
    if not base:
        return None
    if "metric" not in base and isinstance(base.get(profile), dict):  # stored per profile
        return dict(base[profile])
    if profile == primary_profile(study):
        return dict(base)
    return {k: v for k, v in base.items() if not k.startswith("latency")}


def _num(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _constraint_reason(values: dict[str, float], names: tuple[str, ...]) -> str:
    parts = []
    for key, v in values.items():
        if v > 0:
            # Optuna names list-style constraints "0", "1", ...; the study may name them
            name = names[int(key)] if key.isdigit() and int(key) < len(names) else (
                f"constraint {key}" if key.isdigit() else key)
            parts.append(f"{name} exceeded by {v:.4g}")
    return "budget not met: " + "; ".join(parts) + " (constraint values > 0 are violations)"


def _info(t: optuna.trial.FrozenTrial, profile: str, names: tuple[str, ...]) -> TrialInfo:
    a = t.user_attrs
    cfg = a.get("config") or {}
    prune, distill = cfg.get("prune") or {}, cfg.get("distill") or {}
    m = (a.get("measurements") or {}).get(profile)
    constraints = {str(k): float(v) for k, v in t.constraints.items()}
    metric = _num(t.values[0]) if t.values else None
    size = a["size_bytes"] / 1024 if "size_bytes" in a else (_num(t.values[2]) if t.values and len(t.values) > 2 else None)
    if t.state == TrialState.COMPLETE:
        if any(c > 0 for c in constraints.values()):
            status, reason = INFEASIBLE, _constraint_reason(constraints, names)
        elif m is None:
            where = ", ".join(a.get("measurements") or {}) or "no profile"
            status, reason = UNMEASURED, f"not measured on profile {profile!r} (measured on {where})"
        elif metric is None:
            status, reason = FAILED, "completed without a finite metric"
        else:
            status, reason = FRONT, ""  # provisional: dominance is decided over all trials below
    elif t.state == TrialState.FAIL:
        status = FAILED
        reason = a.get("error") or (f"trial {t.number} failed without a recorded error (a worker killed mid-trial "
                                    "and failed by the heartbeat check, or an interrupted run)")
    else:
        status, reason = PENDING, {TrialState.RUNNING: "still running", TrialState.WAITING: "queued",
                                   TrialState.PRUNED: "pruned by Optuna"}.get(t.state, t.state.name.lower())
    nf = a.get("not_faster")
    mem = a.get("memory")
    return TrialInfo(
        number=t.number, status=status, reason=reason, metric=metric,
        latency_ms=_num(m["median_ms"]) if m else None, latency_iqr_ms=_num(m.get("iqr_ms")) if m else None,
        latency_p90_ms=_num(m.get("p90_ms")) if m else None, size_kb=size,
        prune_ratio=_num(prune.get("ratio")), temperature=_num(distill.get("temperature")),
        alpha=_num(distill.get("alpha")), bits=a.get("bits", ""), config=cfg, params=dict(t.params),
        constraints=constraints, not_faster=nf.get(profile) if isinstance(nf, dict) else None,
        memory=mem.get(profile) if isinstance(mem, dict) else None, artifact_sha256=a.get("artifact_sha256", ""),
        student_key=a.get("student_key", ""), measurement=m, completed_at=t.datetime_complete,
    )


def _classify_dominance(data_trials: list[TrialInfo], higher_is_better: bool) -> list[TrialInfo]:
    sign = -1.0 if higher_is_better else 1.0
    cands = [(t, (sign * t.metric, t.latency_ms, t.size_kb)) for t in data_trials if t.status == FRONT]
    out = {}
    for t, loss in cands:
        better = [o for o, ol in cands if dominates(ol, loss)]
        if better:
            best = min(better, key=lambda o: (o.latency_ms, o.number))
            out[t.number] = DOMINATED, (f"dominated by trial {best.number}: at least as good on "
                                        "metric, latency and size, and better on one")
    return [replace(t, status=out[t.number][0], reason=out[t.number][1]) if t.number in out else t
            for t in data_trials]


def study_data(study: optuna.Study, profile: str | None = None) -> StudyData:
    """Classify every trial of ``study`` on ``profile`` (default: the search's primary profile)."""
    profiles = measured_profiles(study)
    profile = profile or primary_profile(study) or (profiles[0] if profiles else "")
    if profiles and profile not in profiles:
        raise StudyError(f"study {study.study_name!r} has no measurement on profile {profile!r}; "
                         f"its trials were measured on: {', '.join(profiles)} (pass one of them as --profile)")
    wl = study.user_attrs.get("workload") or {}
    names = tuple(study.user_attrs.get("constraint_names") or ())
    trials = [_info(t, profile, names) for t in study.get_trials(deepcopy=False)]
    trials = _classify_dominance(trials, bool(wl.get("higher_is_better", True)))
    choices: dict[str, tuple[str, ...]] = {}
    for t in study.get_trials(deepcopy=False):
        for name, dist in t.distributions.items():
            if name.startswith("bits.") and hasattr(dist, "choices"):
                layer = name[len("bits."):]
                choices[layer] = tuple(dict.fromkeys(choices.get(layer, ()) + tuple(map(str, dist.choices))))
    profile_settings = max((p for p in _profile_dicts(study) if p["name"] == profile), key=len, default=None)
    return StudyData(
        study_name=study.study_name, profile=profile, profiles=tuple(profiles),
        metric_name=wl.get("metric", "metric"), higher_is_better=bool(wl.get("higher_is_better", True)),
        layers=tuple(wl.get("layers") or ()), baseline=_baseline_on(study, profile), trials=tuple(trials),
        layer_choices=choices, sensitivity=study.user_attrs.get("sensitivity"), workload=dict(wl),
        fingerprint=dict(study.user_attrs.get("fingerprint") or {}), profile_settings=profile_settings,
        constraint_names=names,
    )


def require_front(data: StudyData) -> list[TrialInfo]:
    """The front, or a StudyError that says why there is none (empty study, all failed, all infeasible)."""
    front = data.front
    if front:
        return front
    n = len(data.trials)
    if n == 0:
        raise StudyError(f"study {data.study_name!r} has no trials yet; run 'autocl search --study "
                         f"{data.study_name}' first")
    failed = data.with_status(FAILED)
    parts = [f"{len(failed)} failed"] if failed else []
    for status in (INFEASIBLE, UNMEASURED, PENDING):
        if data.with_status(status):
            parts.append(f"{len(data.with_status(status))} {status}")
    example = ""
    if failed:
        example = f"; first failure: {failed[0].reason}"
    elif data.with_status(INFEASIBLE):
        t = data.with_status(INFEASIBLE)[0]
        example = f"; trial {t.number}: {t.reason}"
    raise StudyError(f"study {data.study_name!r} has no feasible completed trial on profile {data.profile!r}, so no "
                     f"Pareto front ({n} trial(s): {', '.join(parts)}){example}. Fix the cause and run "
                     "'autocl search' again (finished trials are kept)")


__all__ = [
    "DOMINATED", "FAILED", "FRONT", "INFEASIBLE", "PENDING", "STATUSES", "UNMEASURED", "StudyData", "TrialInfo",
    "dominates", "measured_profiles", "primary_profile", "require_front", "study_data",
]
