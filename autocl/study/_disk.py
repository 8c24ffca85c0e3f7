"""A full disk: one line per trial that ran out of space, and a search that stops instead of failing on.

A trial that cannot write (a student, an artifact, a record beside them) because its disk is full
fails with one line naming the file and the space left there. Every write of the pipeline goes to a
temporary name first and is renamed into place, so a cache entry is whole or absent; SQLite writes
the study in transactions, so the database is never left damaged (a write that does not fit is
rolled back, and the search then stops with the database's own one line). After ``limit`` trials
in a row ran out of space, the next one would too: the search stops with a
:class:`autocl.errors.StudyError`; everything measured stays.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from autocl.compress import format_size
from autocl.errors import StudyError

_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_FULL_TEXT = ("no space left on device", "database or disk is full", "disk quota exceeded")
# torch's zip writer reports a short write without its errno: counted as a full disk only when it is
_SHORT_WRITE = ("file write failed", "unexpected pos")
_NEARLY_FULL = 16 * 2**20
ADVICE = "free some space, or lower the cache's budget (--cache-max; 'autocl cache prune' lists what can go)"


def free_bytes(path: Path) -> int | None:
    """The free bytes of the filesystem holding ``path`` (its nearest existing folder); None if unknown."""
    path = Path(path)
    for folder in (path, *path.parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None


def disk_full(exc: BaseException, where: Path) -> str | None:
    """One line when ``exc`` (or what caused it) is the disk running out of space; None otherwise.

    Args:
        exc: The error a trial raised.
        where: The folder the trial was writing to, when the error names no file (the cache).

    Returns:
        ``no space left on device writing PATH (N MB free there)``, or None.
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        text = str(cause).lower()
        full = (isinstance(cause, OSError) and cause.errno in _FULL_ERRNOS) or any(t in text for t in _FULL_TEXT)
        if not full and any(t in text for t in _SHORT_WRITE):
            free = free_bytes(where)
            full = free is not None and free < _NEARLY_FULL
        if full:
            filename = getattr(cause, "filename", None)
            path = Path(filename) if isinstance(filename, (str, Path)) and filename else Path(where)
            free = free_bytes(path)
            left = "unknown space" if free is None else format_size(free)
            return f"no space left on device writing {path} ({left} free there)"
        cause = cause.__cause__ or cause.__context__
    return None


def storage_failure(exc: BaseException, database: Path) -> StudyError | None:
    """When ``exc`` is, or masks, a failed write of the study database: the one line that stops the search.

    Optuna turns a failed write of a trial's outcome into an ``AssertionError`` ("Should not
    reach") whose context is the database's error; the database itself rolled the write back.

    Args:
        exc: What ``study.optimize`` raised.
        database: The study's SQLite file (or any folder on the disk it would be on).

    Returns:
        The ``StudyError`` to raise instead, or None when the database is not the cause.
    """
    import sqlalchemy.exc
    from optuna.exceptions import StorageInternalError

    kinds = (sqlalchemy.exc.SQLAlchemyError, StorageInternalError)
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen and not isinstance(cause, kinds):
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    if not isinstance(cause, kinds):
        return None
    fact = disk_full(cause, database)
    detail = fact or str(getattr(cause, "orig", None) or cause).strip().splitlines()[0]
    advice = ADVICE if fact else "check that its file (or server) is writable and reachable"
    return StudyError(
        f"search stopped: the study database cannot be written ({detail}); finished trials are saved: "
        f"{advice}, then run the same command again to resume"
    )


class DiskFullRun:
    """Counts trials in a row that ran out of space; the ``limit``-th stops the search."""

    def __init__(self, limit: int = 3) -> None:
        self.limit = limit
        self.trials: list[int] = []

    def succeeded(self) -> None:
        self.trials = []

    def failed(self, number: int, fact: str) -> None:
        """Trial ``number`` ran out of space (``fact``: :func:`disk_full`'s line); raises at the limit."""
        self.trials.append(number)
        if len(self.trials) >= self.limit:
            raise StudyError(
                f"search stopped: trials {', '.join(map(str, self.trials))} ran out of disk space in a row "
                f"(the last: {fact}); everything measured is saved: {ADVICE}, then run the same command "
                "again to resume"
            )


__all__ = ["ADVICE", "DiskFullRun", "disk_full", "free_bytes", "storage_failure"]
