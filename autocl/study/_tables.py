"""autocl's own tables, in the same database as Optuna's.

``autocl_pareto_front`` holds the current Pareto front of each (study, profile), one row per member,
with the configuration and the measurements, so SQL alone answers "what is the front of study X".
``autocl_teacher`` keeps a copy of each study's cached teacher file, so losing the cache never
costs the study (see ``autocl.study._teacher``). ``autocl_claim`` records one-time jobs of a study
that several workers could start at once (see ``autocl.study._claims``).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, DateTime, Float, Integer, LargeBinary, String, UniqueConstraint, create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class ParetoEntry(Base):
    __tablename__ = "autocl_pareto_front"
    __table_args__ = (UniqueConstraint("study_name", "profile", "trial_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_name: Mapped[str] = mapped_column(String(512), index=True)
    profile: Mapped[str] = mapped_column(String(256))
    trial_number: Mapped[int] = mapped_column(Integer)
    metric_name: Mapped[str] = mapped_column(String(128))
    metric: Mapped[float] = mapped_column(Float)
    latency_ms: Mapped[float] = mapped_column(Float)
    latency_iqr_ms: Mapped[float] = mapped_column(Float)
    latency_p90_ms: Mapped[float] = mapped_column(Float)
    size_kb: Mapped[float] = mapped_column(Float)
    prune_ratio: Mapped[float] = mapped_column(Float)
    temperature: Mapped[float] = mapped_column(Float)
    alpha: Mapped[float] = mapped_column(Float)
    bits: Mapped[str] = mapped_column(String(1024))
    config: Mapped[dict] = mapped_column(JSON)
    measurement: Mapped[dict] = mapped_column(JSON)
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


class TeacherCopy(Base):
    __tablename__ = "autocl_teacher"
    __table_args__ = (UniqueConstraint("study_name", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_name: Mapped[str] = mapped_column(String(512), index=True)
    path: Mapped[str] = mapped_column(String(1024))  # relative to the cache folder
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Claim(Base):
    __tablename__ = "autocl_claim"
    __table_args__ = (UniqueConstraint("study_name", "job"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_name: Mapped[str] = mapped_column(String(512), index=True)
    job: Mapped[str] = mapped_column(String(256))
    worker: Mapped[str] = mapped_column(String(256))
    at: Mapped[dt.datetime] = mapped_column(DateTime)


_ENGINES: dict[str, Engine] = {}


def driver_url(url: str) -> str:
    """The SQLAlchemy URL with autocl's PostgreSQL driver: ``postgresql://`` (and ``postgres://``)
    become ``postgresql+psycopg://`` (psycopg 3); any other URL is kept as given."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


def engine_for(url: str) -> Engine:
    """One engine per URL, with autocl's tables created if missing."""
    if url not in _ENGINES:
        # writers of one SQLite file wait for each other (as in make_storage); a server connection is checked
        kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
        engine = create_engine(driver_url(url), **kwargs)
        Base.metadata.create_all(engine)
        _ENGINES[url] = engine
    return _ENGINES[url]
