"""The study keeps its teacher: a copy of the cached teacher file, in the study's own database.

A built-in workload trains its teacher once and caches it; the workload key (and so the study's
fingerprint and every cached student) is a hash of those weights. Losing ``studies/cache/``, or
joining a study from another machine, would otherwise train a different teacher and lock the study
out. Before a study's workload is loaded, its copy is written back to the cache wherever the file
there is missing or different; losing the cache then costs recomputation, never the study.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from autocl.runtime import cache_dir
from autocl.study._tables import TeacherCopy, engine_for
from autocl.workloads import Workload


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def teacher_record(workload: Workload) -> dict | None:
    """Where the workload's cached teacher file lies (relative to the cache) and its sha256; None
    for workloads whose teacher autocl did not train (the user's own model)."""
    path = getattr(workload, "teacher_file", None)
    if path is None or not Path(path).is_file():
        return None
    path = Path(path).resolve()
    try:
        rel = str(path.relative_to(cache_dir().resolve()))
    except ValueError:
        rel = str(path)
    return {"path": rel, "sha256": _sha256(path.read_bytes())}


def keep_teacher(url: str, study_name: str, record: dict | None) -> None:
    """Store a copy of the teacher file in the study's database, once."""
    if not record:
        return
    with Session(engine_for(url)) as s:
        if s.scalars(select(TeacherCopy).where(TeacherCopy.study_name == study_name)).first() is not None:
            return
        path = Path(record["path"]) if Path(record["path"]).is_absolute() else cache_dir() / record["path"]
        data = path.read_bytes()
        s.add(TeacherCopy(study_name=study_name, path=record["path"], sha256=_sha256(data), data=data))
        try:
            s.commit()
        except IntegrityError:  # another worker opening the study at once stored it first
            s.rollback()


def restore_teacher(url: str, study_name: str) -> list[Path]:
    """Write the study's teacher copy back into the cache where the file is missing or differs;
    returns the files written."""
    written = []
    with Session(engine_for(url)) as s:
        rows = s.scalars(select(TeacherCopy).where(TeacherCopy.study_name == study_name)).all()
        for row in rows:
            path = Path(row.path) if Path(row.path).is_absolute() else cache_dir() / row.path
            if path.is_file() and _sha256(path.read_bytes()) == row.sha256:
                continue
            if _sha256(row.data) != row.sha256:  # never write a damaged copy over anything
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(row.data)
            tmp.replace(path)
            written.append(path)
    return written
