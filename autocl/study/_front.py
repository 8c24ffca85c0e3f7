"""Each profile's Pareto front: the study record's members, and autocl's SQL table written from them.

There is one front: the study record's (:func:`autocl.study._record.read_trials`, ranked by the
comparable latency). :func:`front_records` gives its members on a profile, :func:`front_numbers`
their trial numbers; the search, polishing, re-measurement, warm starts and the service read it
there. ``autocl_pareto_front`` holds a copy of each (study, profile)'s members, written from the
record's rows (:meth:`TrialRecord.to_row`, key for key what ``autocl front --format json`` prints)
after every trial and every re-measurement, so SQL alone answers "what is the front of study X".
"""

from __future__ import annotations

import datetime as dt

import optuna
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from autocl.study._baselines import measured_profiles
from autocl.study._claims import hold
from autocl.study._record import FRONT, TrialRecord, read_trials
from autocl.study._tables import ParetoEntry, engine_for


def front_records(study: optuna.Study, profile: str) -> list[TrialRecord]:
    """The feasible Pareto front of ``study`` on ``profile``, best comparable speed-up first.

    Args:
        study: The study.
        profile: The hardware profile's name.

    Returns:
        The front members (status ``front``), ordered by ``TrialRecord.objectives[1]`` (the
        comparable latency), then trial number.
    """
    members = [r for r in read_trials(study, profile) if r.status == FRONT]
    return sorted(members, key=lambda r: (r.objectives[1], r.number))


def front_numbers(study: optuna.Study, profile: str | None = None) -> set[int]:
    """The trial numbers of the current front members.

    Args:
        study: The study.
        profile: One profile's front (default: the union of every measured profile's front).

    Returns:
        The members' trial numbers.
    """
    profiles = [profile] if profile else measured_profiles(study)
    return {r.number for p in profiles for r in front_records(study, p)}


def write_front(url: str, study: optuna.Study, profile: str, metric_name: str | None = None) -> list[dict]:
    """Replace the stored front of (study, profile) with the record's current one.

    Workers writing at once take turns, and each reads the front inside its turn, from every trial
    finished by then: the last write is never an older front.

    Args:
        url: The database URL.
        study: The study.
        profile: The hardware profile's name.
        metric_name: The workload's metric name, stored with the rows (default: the study's).

    Returns:
        The rows written (``TrialRecord.to_row()``), best comparable speed-up first.
    """
    metric_name = metric_name or (study.user_attrs.get("workload") or {}).get("metric") or "metric"
    with Session(engine_for(url)) as session, session.begin():
        hold(session, f"autocl-front:{study.study_name}:{profile}")
        session.execute(
            delete(ParetoEntry).where(ParetoEntry.study_name == study.study_name, ParetoEntry.profile == profile)
        )
        members = front_records(study, profile)
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        rows = []
        for rank, r in enumerate(members):
            row = r.to_row()
            rows.append(row)
            m = r.measurement or {}
            session.add(
                ParetoEntry(
                    study_name=study.study_name,
                    profile=profile,
                    trial_number=r.number,
                    metric_name=metric_name,
                    metric=r.metric,
                    latency_ms=r.latency_ms,
                    latency_iqr_ms=r.latency_iqr_ms if r.latency_iqr_ms is not None else 0.0,
                    latency_p90_ms=r.latency_p90_ms if r.latency_p90_ms is not None else 0.0,
                    size_kb=r.size_kb,
                    prune_ratio=r.prune_ratio or 0.0,
                    temperature=r.temperature or 0.0,
                    alpha=r.alpha or 0.0,
                    bits=r.bits,
                    config=r.config,
                    # the trial's measurement, and the record's row with the rank the front is read in
                    measurement={**m, "rank": rank, "row": row},
                    artifact_sha256=r.artifact_sha256,
                    updated_at=now,
                )
            )
    return rows


def read_front(url: str, study_name: str, profile: str | None = None) -> list[dict]:
    """The stored front of a study (of one profile, or of all), as the record's rows.

    Args:
        url: The database URL.
        study_name: The study's name.
        profile: The profile whose front to read (default: every profile's).

    Returns:
        The stored rows (``TrialRecord.to_row()`` plus ``profile``), in the front's order within
        each profile (best comparable speed-up first). Rows written by an older autocl, which
        stored no row, give the table's columns.
    """
    query = select(ParetoEntry).where(ParetoEntry.study_name == study_name)
    if profile:
        query = query.where(ParetoEntry.profile == profile)
    with Session(engine_for(url)) as session:
        entries = session.scalars(query).all()
        out = []
        for e in entries:
            m = e.measurement or {}
            row = m.get("row") or {
                "trial": e.trial_number,
                "metric": e.metric,
                "latency_ms": e.latency_ms,
                "size_kb": e.size_kb,
                "bits": e.bits,
                "artifact_sha256": e.artifact_sha256,
            }
            out.append((e.profile, m.get("rank", e.latency_ms), e.trial_number, {**row, "profile": e.profile}))
    return [row for *_, row in sorted(out, key=lambda x: x[:3])]


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


__all__ = ["front_numbers", "front_records", "read_front", "stored_profiles", "write_front"]
