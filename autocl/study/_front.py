"""Pareto fronts of a study, one per profile: computed here, stored in autocl's table, read back as rows.

The front of a profile is the non-dominated set of completed, feasible trials (every constraint
value <= 0) on (metric, median latency on that profile, artifact size). On the primary profile it
is exactly Optuna's ``study.best_trials``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import optuna
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from autocl.study._claims import hold
from autocl.study._record import pareto_members
from autocl.study._tables import ParetoEntry, engine_for


@dataclass(frozen=True)
class FrontRow:
    """One member of a Pareto front as stored in autocl's table (``read_front``), so SQL alone
    answers "what is the front". The views (``autocl front``, the report, the API) read trials
    through the study record instead (:class:`autocl.study.TrialRecord`), whose definitions the
    numbers here follow: ``speedup`` is ``speedup_search`` (the fp32 baseline's median over this
    one's, taken in alternation in the trial); ``remeasured_ms`` and ``latency_changed`` come from
    re-measuring the front."""

    trial: int
    prune_ratio: float
    bits: str
    temperature: float
    alpha: float
    metric: float
    latency_ms: float
    latency_iqr_ms: float
    latency_p90_ms: float
    size_kb: float
    artifact_sha256: str
    speedup: float | None = None
    not_faster: bool | None = None
    peak_memory_mb: float | None = None
    remeasured_ms: float | None = None
    latency_changed: bool | None = None
    kept_macs: float | None = None
    kept_params: float | None = None
    polish_of: int | None = None
    distilled: bool | None = None
    qat: bool = False
    clusters: int = 0

    def to_dict(self) -> dict:
        """The row as a dict.

        Returns:
            Every field (``dataclasses.asdict``).
        """
        return asdict(self)


def _measurement(trial: optuna.trial.FrozenTrial, profile: str) -> dict:
    """The trial's stored measurement on ``profile`` with the per-profile flags folded in."""
    a = trial.user_attrs
    m = dict(a["measurements"][profile])
    m.setdefault("speedup", a.get("speedup", {}).get(profile))
    m.setdefault("not_faster", a.get("not_faster", {}).get(profile))
    pruning = a.get("pruning") or {}
    m.setdefault("kept_macs", pruning.get("kept_macs"))
    m.setdefault("kept_params", pruning.get("kept_params"))
    m.setdefault("polish_of", a.get("polish_of"))
    m.setdefault("distilled", a.get("distilled"))
    return m


def _row(trial: int, cfg: dict, bits: str, metric: float, m: dict, size_kb: float, sha: str) -> FrontRow:
    memory = m.get("memory") or {}
    again = m.get("remeasure") or {}
    return FrontRow(
        trial=trial,
        prune_ratio=cfg["prune"]["ratio"],
        bits=bits,
        temperature=cfg["distill"]["temperature"],
        alpha=cfg["distill"]["alpha"],
        metric=metric,
        latency_ms=m["median_ms"],
        latency_iqr_ms=m["iqr_ms"],
        latency_p90_ms=m["p90_ms"],
        size_kb=size_kb,
        artifact_sha256=sha,
        speedup=m.get("speedup"),
        not_faster=m.get("not_faster"),
        peak_memory_mb=memory.get("peak_mb"),
        remeasured_ms=again.get("median_ms"),
        latency_changed=again.get("changed"),
        kept_macs=m.get("kept_macs"),
        kept_params=m.get("kept_params"),
        polish_of=m.get("polish_of"),
        distilled=m.get("distilled"),
        qat=bool(cfg.get("quant", {}).get("qat")),
        clusters=int(cfg.get("cluster", {}).get("clusters", 0)),
    )


def row_from_trial(trial: optuna.trial.FrozenTrial, profile: str) -> FrontRow:
    """A front row of ``trial`` with its latency on ``profile``.

    Args:
        trial: A completed, measured trial.
        profile: The profile whose measurement (``user_attrs['measurements'][profile]``) gives the latency.

    Returns:
        The ``FrontRow``.
    """
    a = trial.user_attrs
    return _row(
        trial.number,
        a["config"],
        a.get("bits", ""),
        trial.values[0],
        _measurement(trial, profile),
        a["size_bytes"] / 1024,
        a["artifact_sha256"],
    )


def is_feasible(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether ``trial`` meets all its constraints.

    Args:
        trial: A trial.

    Returns:
        True when every constraint value is <= 0 (Optuna's convention).
    """
    return all(v <= 0 for v in trial.constraints.values())


def compute_front(study: optuna.Study, profile: str | None = None) -> list[optuna.trial.FrozenTrial]:
    """Pareto-optimal completed feasible trials on (metric, latency on ``profile``, size).

    Args:
        study: The study.
        profile: The profile whose latency is used; trials not measured on it are left out. None takes
            the objective values (the primary profile).

    Returns:
        The front's trials, ordered by latency (then trial number).
    """
    sign = -1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    points = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        if not is_feasible(t):
            continue
        if profile is None:
            latency = t.values[1]
        elif profile in t.user_attrs.get("measurements", {}):
            latency = t.user_attrs["measurements"][profile]["median_ms"]
        else:
            continue
        points.append((t, (sign * t.values[0], latency, t.values[2])))

    members = pareto_members({t.number: v for t, v in points})
    front = [(t, v) for t, v in points if t.number in members]
    return [t for t, v in sorted(front, key=lambda tv: (tv[1][1], tv[0].number))]


def write_front(url: str, study: optuna.Study, profile: str, metric_name: str) -> list[FrontRow]:
    """Replace the stored front of (study, profile) with the current one.

    Workers writing at once take turns, and each computes the front inside its turn, from every trial
    finished by then: the last write is never an older front.

    Args:
        url: The database URL.
        study: The study.
        profile: The hardware profile's name.
        metric_name: The workload's metric name, stored with the rows.

    Returns:
        The rows written, ordered by latency.
    """
    with Session(engine_for(url)) as session, session.begin():
        hold(session, f"autocl-front:{study.study_name}:{profile}")
        session.execute(
            delete(ParetoEntry).where(ParetoEntry.study_name == study.study_name, ParetoEntry.profile == profile)
        )
        trials = compute_front(study, profile)
        rows = [row_from_trial(t, profile) for t in trials]
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        for t, r in zip(trials, rows, strict=False):
            session.add(
                ParetoEntry(
                    study_name=study.study_name,
                    profile=profile,
                    trial_number=r.trial,
                    metric_name=metric_name,
                    metric=r.metric,
                    latency_ms=r.latency_ms,
                    latency_iqr_ms=r.latency_iqr_ms,
                    latency_p90_ms=r.latency_p90_ms,
                    size_kb=r.size_kb,
                    prune_ratio=r.prune_ratio,
                    temperature=r.temperature,
                    alpha=r.alpha,
                    bits=r.bits,
                    config=t.user_attrs["config"],
                    measurement=_measurement(t, profile),
                    artifact_sha256=r.artifact_sha256,
                    updated_at=now,
                )
            )
    return rows


def annotate_front(url: str, study_name: str, profile: str, remeasured: dict[int, dict]) -> None:
    """Store re-measurements with the front's rows of ``profile``.

    Args:
        url: The database URL.
        study_name: The study's name.
        profile: The hardware profile's name.
        remeasured: trial -> {median_ms, changed, ...}.
    """
    with Session(engine_for(url)) as session, session.begin():
        hold(session, f"autocl-front:{study_name}:{profile}")
        entries = session.scalars(
            select(ParetoEntry).where(ParetoEntry.study_name == study_name, ParetoEntry.profile == profile)
        ).all()
        for e in entries:
            if e.trial_number in remeasured:
                e.measurement = {**e.measurement, "remeasure": remeasured[e.trial_number]}


def read_front(url: str, study_name: str, profile: str | None = None) -> list[FrontRow]:
    """The stored front of a study (of one profile, or of all), ordered by latency.

    Args:
        url: The database URL.
        study_name: The study's name.
        profile: The profile whose front to read (default: every profile's).

    Returns:
        The stored front rows, ordered by latency (then trial number).
    """
    query = select(ParetoEntry).where(ParetoEntry.study_name == study_name)
    if profile:
        query = query.where(ParetoEntry.profile == profile)
    with Session(engine_for(url)) as session:
        entries = session.scalars(query.order_by(ParetoEntry.latency_ms, ParetoEntry.trial_number)).all()
        return [
            _row(e.trial_number, e.config, e.bits, e.metric, e.measurement, e.size_kb, e.artifact_sha256)
            for e in entries
        ]


def stored_profiles(url: str, study_name: str) -> list[str]:
    """The profiles a study has a stored front for.

    Args:
        url: The database URL.
        study_name: The study's name.

    Returns:
        The profiles' names, sorted.
    """
    with Session(engine_for(url)) as session:
        return sorted(set(session.scalars(select(ParetoEntry.profile).where(ParetoEntry.study_name == study_name))))
