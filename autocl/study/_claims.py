"""Workers of one study in step: one-time jobs done by exactly one of them, and a lock per key.

Workers that join one study at the same moment all see it new, or all see the same front member
to polish. Enqueuing the by-hand recipes, or a member's polished twin, is claimed first: a row in
``autocl_claim`` whose (study, job) is unique, so the database lets exactly one insert through, on
SQLite and on PostgreSQL alike. The others skip the job. No scheduler: Optuna's own queue (a
WAITING trial is popped by one worker only) hands the enqueued trials out.

:func:`hold` serializes the read-then-replace of a stored front: on PostgreSQL with a transaction
advisory lock; SQLite lets one writer in at a time anyway (the caller writes first, then reads).
:func:`schema_lock` lets one worker at a time create the tables of a fresh database, PostgreSQL or
SQLite (Optuna's schema creation is not safe against a concurrent one).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import optuna
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from autocl.study._tables import Claim, driver_url, engine_for


def claim(url: str, study: optuna.Study, job: str) -> bool:
    """True for the one caller that claims ``job`` of ``study`` first; False for every other. The
    job is keyed by the study's id too, so a study deleted and made again under its name starts afresh."""
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    key = f"{study._study_id}:{job}"
    try:
        with Session(engine_for(url)) as session, session.begin():
            session.add(
                Claim(study_name=study.study_name, job=key, worker=f"{socket.gethostname()}:{os.getpid()}", at=now)
            )
    except IntegrityError:
        return False
    return True


def _lock_number(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


@contextmanager
def schema_lock(url: str) -> Iterator[None]:
    """Hold a database-wide lock while the block runs: a PostgreSQL advisory lock, or for an SQLite
    file an exclusive ``flock`` of the folder holding it (nothing is left beside the database); a
    no-op elsewhere. When the server or the driver cannot be reached, the block runs unlocked:
    opening the storage says why."""
    if driver_url(url).startswith("sqlite:///"):
        with _folder_lock(url[len("sqlite:///") :]):
            yield
        return
    if not driver_url(url).startswith("postgresql"):
        yield
        return
    key = {"k": _lock_number("autocl-schema")}
    engine = None
    try:
        engine = create_engine(driver_url(url), poolclass=NullPool)
        conn = engine.connect()
        conn.execute(text("SELECT pg_advisory_lock(:k)"), key)
    except Exception:
        if engine is not None:
            engine.dispose()
        yield
        return
    try:
        yield
    finally:
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), key)
        finally:
            conn.close()
            engine.dispose()


@contextmanager
def _folder_lock(path: str) -> Iterator[None]:
    """Two processes opening one new SQLite file at once both run Optuna's table creation and one
    fails ("UNIQUE constraint failed: alembic_version", "table studies already exists"): they take
    turns here instead."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: unlocked, as before
        yield
        return
    if not path or path.startswith("file:") or path == ":memory:":
        yield
        return
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:  # no such folder (yet): opening the storage says why
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def hold(session: Session, key: str) -> None:
    """Within ``session``'s transaction, wait for and hold the lock named ``key`` (PostgreSQL; a
    no-op elsewhere). It is released when the transaction ends."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_number(key)})


__all__ = ["claim", "hold", "schema_lock"]
