"""The Pareto front of a study: computed by Optuna, stored in autocl's table, read back as rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import optuna
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from autocl.study._tables import ParetoEntry, engine_for


@dataclass(frozen=True)
class FrontRow:
    """One member of a Pareto front, as shown and exported."""

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

    def to_dict(self) -> dict:
        return asdict(self)


def row_from_trial(trial: optuna.trial.FrozenTrial, profile: str) -> FrontRow:
    """A front row of ``trial`` with its latency on ``profile`` (``user_attrs['measurements'][profile]``)."""
    a = trial.user_attrs
    cfg, m = a["config"], a["measurements"][profile]
    return FrontRow(
        trial=trial.number, prune_ratio=cfg["prune"]["ratio"], bits=a.get("bits", ""),
        temperature=cfg["distill"]["temperature"], alpha=cfg["distill"]["alpha"], metric=trial.values[0],
        latency_ms=m["median_ms"], latency_iqr_ms=m["iqr_ms"], latency_p90_ms=m["p90_ms"],
        size_kb=a["size_bytes"] / 1024, artifact_sha256=a["artifact_sha256"],
    )


def compute_front(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Optuna's Pareto-optimal completed trials, ordered by latency."""
    return sorted(study.best_trials, key=lambda t: (t.values[1], t.number))


def write_front(url: str, study: optuna.Study, profile: str, metric_name: str) -> list[FrontRow]:
    """Replace the stored front of (study, profile) with Optuna's current one."""
    trials = compute_front(study)
    rows = [row_from_trial(t, profile) for t in trials]
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    with Session(engine_for(url)) as session, session.begin():
        session.execute(delete(ParetoEntry).where(ParetoEntry.study_name == study.study_name,
                                                  ParetoEntry.profile == profile))
        for t, r in zip(trials, rows):
            session.add(ParetoEntry(
                study_name=study.study_name, profile=profile, trial_number=r.trial, metric_name=metric_name,
                metric=r.metric, latency_ms=r.latency_ms, latency_iqr_ms=r.latency_iqr_ms,
                latency_p90_ms=r.latency_p90_ms, size_kb=r.size_kb, prune_ratio=r.prune_ratio,
                temperature=r.temperature, alpha=r.alpha, bits=r.bits, config=t.user_attrs["config"],
                measurement=t.user_attrs["measurements"][profile], artifact_sha256=r.artifact_sha256, updated_at=now,
            ))
    return rows


def read_front(url: str, study_name: str, profile: str | None = None) -> list[FrontRow]:
    """The stored front of a study (of one profile, or of all), ordered by latency."""
    query = select(ParetoEntry).where(ParetoEntry.study_name == study_name)
    if profile:
        query = query.where(ParetoEntry.profile == profile)
    with Session(engine_for(url)) as session:
        entries = session.scalars(query.order_by(ParetoEntry.latency_ms, ParetoEntry.trial_number)).all()
        return [FrontRow(
            trial=e.trial_number, prune_ratio=e.prune_ratio, bits=e.bits, temperature=e.temperature, alpha=e.alpha,
            metric=e.metric, latency_ms=e.latency_ms, latency_iqr_ms=e.latency_iqr_ms,
            latency_p90_ms=e.latency_p90_ms, size_kb=e.size_kb, artifact_sha256=e.artifact_sha256,
        ) for e in entries]
