"""Choosing one member of the feasible front: by conditions, fastest within a metric drop, or the knee.

Picks only ever choose among the feasible Pareto front of one profile: a dominated trial is never
the best answer to any of these questions.

* ``'metric_drop<=0.01,latency_ms<=5'``: conditions joined by commas on ``metric``, ``metric_drop``
  (fp32 metric minus the member's, for a higher-is-better metric; ``1%`` means 0.01),
  ``metric_change`` (its negation: positive = better), ``latency_ms``, ``latency_p90_ms``,
  ``size_kb``, ``speedup_search`` (measured in the trial, alternating with fp32),
  ``speedup_remeasured`` (from the front's re-measurement), ``speedup`` (the comparable one:
  re-measured when present, else the search's) or ``normalized_ms`` (the comparable latency), with
  ``<=``, ``>=``, ``<`` or ``>``; among the members meeting all of them, the fastest by the
  comparable speed-up (:attr:`autocl.study.TrialRecord.speedup`, never by raw milliseconds taken
  minutes apart), then the better metric, then the smaller. ``latency_ms`` bounds stay absolute.
* ``fastest-within:0.01``: the same as ``metric_drop<=0.01``.
* ``knee``: on the metric-vs-comparable-latency trade-off curve of the front, both scaled to [0, 1], the
  member farthest beyond the straight line joining the fastest and the most accurate member
  (with two members there is no bend: the more accurate one).
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

from autocl.errors import ConfigError, StudyError
from autocl.report._trials import StudyData, TrialInfo, dominates, require_front

FIELDS = (
    "metric",
    "metric_drop",
    "metric_change",
    "latency_ms",
    "latency_p90_ms",
    "size_kb",
    "speedup_search",
    "speedup_remeasured",
    "speedup",
    "normalized_ms",
)
_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
_COND = re.compile(r"^\s*([a-z0-9_]+)\s*(<=|>=|<|>)\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(%?)\s*$")


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    bound: float

    def __str__(self) -> str:
        return f"{self.field}{self.op}{self.bound:g}"

    def holds(self, value: float | None) -> bool:
        return value is not None and _OPS[self.op](value, self.bound)

    def excess(self, value: float | None) -> float:
        """How far ``value`` is on the wrong side of the bound (0 when it holds)."""
        if value is None:
            return float("inf")
        return max(0.0, value - self.bound) if self.op in ("<=", "<") else max(0.0, self.bound - value)


@dataclass(frozen=True)
class Pick:
    """The chosen member, the rule that chose it, and why."""

    trial: TrialInfo
    rule: str
    why: str


def value_of(data: StudyData, t: TrialInfo, field: str) -> float | None:
    if field == "metric_drop":
        return data.metric_drop(t)
    if field == "speedup":  # the comparable one: re-measured when present, else the search's
        return t.speedup
    if field == "metric_change":
        drop = data.metric_drop(t)
        return None if drop is None else 0.0 - drop + 0.0
    return getattr(t, field)


def parse_conditions(spec: str) -> list[Condition]:
    """Parse a comma-separated list of conditions.

    Args:
        spec: E.g. ``'metric_drop<=1%,latency_ms<=5'``.

    Returns:
        One ``Condition`` per part.

    Raises:
        ConfigError: A part cannot be read; the error names it.
    """
    conds = []
    for part in spec.split(","):
        m = _COND.match(part)
        if not m:
            raise ConfigError(
                f"cannot read {part.strip()!r} in {spec!r}: write FIELD<=NUMBER (or >=, <, >), joined "
                f"by commas, e.g. 'metric_drop<=0.01,latency_ms<=5'; or 'fastest-within:0.01', or "
                "'knee'",
                field="--pick",
            )
        field, op, num, pct = m.groups()
        if field not in FIELDS:
            raise ConfigError(f"unknown field {field!r} in {spec!r}; use one of {', '.join(FIELDS)}", field="--pick")
        conds.append(Condition(field, op, float(num) / (100 if pct else 1)))
    return conds


def _rank(data: StudyData, t: TrialInfo) -> tuple:
    """Fastest first by the comparable latency (``objectives[1]``: the best comparable speed-up)."""
    drop = data.metric_drop(t)
    sign = -1.0 if data.higher_is_better else 1.0
    metric, latency, size = t.objectives
    return (latency, drop if drop is not None else sign * metric, size, t.number)


def _fmt(data: StudyData, t: TrialInfo, fields: list[str]) -> str:
    vals = ", ".join(
        f"{f} {value_of(data, t, f):.4g}" if value_of(data, t, f) is not None else f"{f} -" for f in fields
    )
    return f"trial {t.number} ({vals})"


def _no_match(data: StudyData, spec: str, conds: list[Condition], front: list[TrialInfo]) -> StudyError:
    fields = list(dict.fromkeys(c.field for c in conds))
    failing = []
    for c in conds:
        if not any(c.holds(value_of(data, t, c.field)) for t in front):
            best = min(front, key=lambda t: c.excess(value_of(data, t, c.field)))
            failing.append(f"{c} holds for none of the {len(front)} members (closest: {_fmt(data, best, [c.field])})")
    if not failing:
        failing.append("each condition holds for some member, but no member meets all of them")
    spread = {}
    for f in fields:
        vals = [v for v in (value_of(data, t, f) for t in front) if v is not None]
        spread[f] = max(max(vals) - min(vals), 1e-12) if vals else 1.0
    closest = sorted(
        front, key=lambda t: (sum(c.excess(value_of(data, t, c.field)) / spread[c.field] for c in conds), t.number)
    )[:3]
    return StudyError(
        f"no member of the front of study {data.study_name!r} on profile {data.profile!r} satisfies "
        f"{spec!r}: {'; '.join(failing)}. Closest: {'; '.join(_fmt(data, t, fields) for t in closest)}. "
        "Relax the condition, or export one of those with --trial N"
    )


def knee(data: StudyData, front: list[TrialInfo]) -> tuple[TrialInfo, str]:
    """The bend of the metric-vs-latency curve (see the module docstring).

    Args:
        data: The study on one profile.
        front: The front members.

    Returns:
        ``(trial, why)``: the knee member and the reason, in words.
    """
    sign = -1.0 if data.higher_is_better else 1.0
    keyed = [(t, (sign * t.objectives[0], t.objectives[1])) for t in front]
    curve = [t for t, k in keyed if not any(dominates(o, k) for _, o in keyed)]
    if len(curve) == 1:
        return curve[0], "the only member on the metric-vs-latency curve"
    lat = [t.objectives[1] for t in curve]
    met = [sign * t.objectives[0] for t in curve]  # lower is better
    l_lo, l_hi, m_lo, m_hi = min(lat), max(lat), min(met), max(met)

    def goodness(t: TrialInfo) -> float:
        metric, latency, _ = t.objectives
        fast = (l_hi - latency) / (l_hi - l_lo) if l_hi > l_lo else 1.0
        good = (m_hi - sign * metric) / (m_hi - m_lo) if m_hi > m_lo else 1.0
        return fast + good

    best = max(curve, key=lambda t: (round(goodness(t), 12), -sign * t.objectives[0], -t.number))
    return best, (
        f"the knee of the {len(curve)}-member metric-vs-latency curve: normalized speed plus normalized "
        f"{data.metric_name} is {goodness(best):.3f} there (1.0 on the line joining the extremes)"
    )


def pick(data: StudyData, spec: str) -> Pick:
    """Choose a front member by ``spec`` (see the module docstring).

    Args:
        data: The study on one profile.
        spec: ``'knee'``, ``'fastest-within:DROP'`` or conditions such as
            ``'metric_drop<=0.01,latency_ms<=5'`` (the fastest member meeting them).

    Returns:
        The ``Pick``: the chosen trial, the spec and why it was chosen.

    Raises:
        StudyError: The front is empty or no member satisfies the conditions (naming the failing
            condition and the closest members), or a condition needs the fp32 baseline the study lacks.
        ConfigError: ``spec`` cannot be read.
    """
    spec = spec.strip()
    front = require_front(data)
    if spec == "knee":
        t, why = knee(data, front)
        return Pick(t, "knee", why)
    if spec.startswith("fastest-within:"):
        conds = parse_conditions("metric_drop<=" + spec.split(":", 1)[1])
    else:
        conds = parse_conditions(spec)
    if any(c.field in ("metric_drop", "metric_change") for c in conds) and not data.baseline:
        raise StudyError(
            f"study {data.study_name!r} has no fp32 baseline stored, so metric_drop and metric_change "
            "are unknown; pick on metric, latency_ms, size_kb or speedup_search instead"
        )
    ok = [t for t in front if all(c.holds(value_of(data, t, c.field)) for c in conds)]
    if not ok:
        raise _no_match(data, spec, conds, front)
    best = min(ok, key=lambda t: _rank(data, t))
    return Pick(
        best,
        spec,
        f"the best comparable speed-up of the {len(ok)} front member(s) meeting {', '.join(map(str, conds))}",
    )


__all__ = ["FIELDS", "Condition", "Pick", "knee", "parse_conditions", "pick", "value_of"]
