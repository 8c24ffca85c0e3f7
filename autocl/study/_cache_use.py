"""What each study needs from the artifact cache: which entries its trials made, and which must stay.

A study's trials record the student and the artifact they were built from (``student_key``,
``artifact_path``, see :mod:`autocl.study._record`). From those, per study:

* **used**: every entry a trial of the study refers to (what ``autocl cache`` counts per study);
* **kept**: what eviction never removes: the students and artifacts of the current front members
  on every profile (they are what users export), and those of the trials that a queued or running
  trial will build on (a polished twin's ``polish_of``, or any ``*_of`` link to a trial number),
  with the ladder checkpoints such a trial resumes from (a waiting promotion's ``rung_of``).

Entries are matched through :class:`autocl.compress.CacheLayout`; no path is spelled here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import TrialState

from autocl.compress import ARTIFACT, CHECKPOINT, CacheEntry, CacheLayout
from autocl.runtime import home_dir
from autocl.study._front import front_numbers


@dataclass(frozen=True)
class StudyCacheUse:
    """One study's claim on the cache (see the module docstring)."""

    name: str
    url: str
    layout: CacheLayout | None
    used_students: frozenset[str] = frozenset()
    used_artifacts: frozenset[str] = frozenset()
    kept_students: frozenset[str] = frozenset()
    kept_artifacts: frozenset[str] = frozenset()
    used_ladders: frozenset[str] = frozenset()
    kept_ladders: frozenset[str] = frozenset()
    front_trials: tuple[int, ...] = field(default=())

    def _mine(self, entry: CacheEntry) -> bool:
        return self.layout is not None and entry.layout.folder.name == self.layout.folder.name

    def uses(self, entry: CacheEntry) -> bool:
        """Whether a trial of this study refers to ``entry``."""
        if not self._mine(entry):
            return False
        if entry.kind == CHECKPOINT:
            return entry.student_key in self.used_ladders
        return entry.key in (self.used_artifacts if entry.kind == ARTIFACT else self.used_students)

    def keeps(self, entry: CacheEntry) -> bool:
        """Whether ``entry`` belongs to a front member, or to a trial a queued one builds on."""
        if not self._mine(entry):
            return False
        if entry.kind == CHECKPOINT:
            return entry.student_key in self.kept_ladders
        if entry.kind == ARTIFACT:
            # a member stored without its artifact's path keeps every artifact of its student
            return entry.key in self.kept_artifacts or f"{entry.student_key}-*" in self.kept_artifacts
        return entry.key in self.kept_students


def _artifact_stem(attrs: dict) -> str:
    key, path = attrs.get("student_key", ""), attrs.get("artifact_path", "")
    if not key:
        return ""
    stem = Path(path).stem if path else ""
    return stem if stem.startswith(key + "-") else f"{key}-*"


def _ladder(attrs: dict) -> str:
    """The ladder key a trial's student was distilled under ('' when it is not on a ladder)."""
    fid = attrs.get("fidelity")
    return str(fid.get("ladder_key") or "") if isinstance(fid, dict) else ""


def _links(attrs: dict) -> list[int]:
    """Trial numbers a trial builds on: ``polish_of`` and any other ``*_of`` link."""
    return [v for k, v in attrs.items() if k.endswith("_of") and isinstance(v, int) and not isinstance(v, bool)]


def study_cache_use(study: optuna.Study, url: str, cache_root: Path) -> StudyCacheUse:
    """What ``study`` uses and keeps in the cache under ``cache_root``.

    Args:
        study: The study.
        url: Its storage URL (for the listing).
        cache_root: The artifact cache's root.

    Returns:
        The study's ``StudyCacheUse``; without a layout when the study stored no workload key.
    """
    attrs = study.user_attrs
    name = (attrs.get("workload") or {}).get("name", "")
    key = (attrs.get("fingerprint") or {}).get("workload_key", "")
    layout = CacheLayout.of(cache_root, name, key) if name and key else None
    trials = study.get_trials(deepcopy=False)
    by_number = {t.number: t for t in trials}
    used_s = {t.user_attrs["student_key"] for t in trials if t.user_attrs.get("student_key")}
    used_a = {_artifact_stem(t.user_attrs) for t in trials} - {""}
    front = front_numbers(study)  # the union of every measured profile's front, as every view reads it
    waiting = (TrialState.WAITING, TrialState.RUNNING)
    sources = {n for t in trials if t.state in waiting for n in _links(t.user_attrs)}
    kept = [by_number[n].user_attrs for n in sorted(front | sources) if n in by_number]
    return StudyCacheUse(
        name=study.study_name,
        url=url,
        layout=layout,
        used_students=frozenset(used_s),
        used_artifacts=frozenset(used_a),
        kept_students=frozenset(a["student_key"] for a in kept if a.get("student_key")),
        kept_artifacts=frozenset(_artifact_stem(a) for a in kept) - {""},
        used_ladders=frozenset(_ladder(t.user_attrs) for t in trials) - {""},
        kept_ladders=frozenset(_ladder(by_number[n].user_attrs) for n in sources if n in by_number) - {""},
        front_trials=tuple(sorted(front)),
    )


def _is_optuna_db(path: Path) -> bool:
    """An SQLite file with Optuna's tables (opening anything else would create them in it)."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return {"studies", "trials", "version_info"} <= tables
    except sqlite3.Error:
        return False


def home_cache_uses(cache_root: Path, extra: Iterable[str] = (), skip: Iterable[str] = ()) -> list[StudyCacheUse]:
    """The cache use of every study in ``AUTOCL_HOME``'s SQLite files and in the ``extra`` URLs.

    A database that cannot be read (being created, damaged, another program's) is left out.

    Args:
        cache_root: The artifact cache's root.
        extra: More storage URLs (a PostgreSQL study's, a file elsewhere).
        skip: URLs to leave out (the caller's own study, read separately).

    Returns:
        One ``StudyCacheUse`` per study.
    """
    home = home_dir()
    urls = [f"sqlite:///{p}" for p in sorted(home.glob("*.db")) if _is_optuna_db(p)] if home.is_dir() else []
    urls += [u for u in extra if u not in urls]
    out = []
    for url in urls:
        if url in set(skip):
            continue
        storage = None
        try:
            storage = optuna.storages.RDBStorage(url, skip_table_creation=True)
            for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
                study = optuna.load_study(study_name=summary.study_name, storage=storage)
                out.append(study_cache_use(study, url, cache_root))
        except Exception:  # a listing never fails on one unreadable database
            continue
        finally:
            if storage is not None:  # a search asks again after many trials: no connections left open
                storage.engine.dispose()
    return out


def keep_predicate(uses: Iterable[StudyCacheUse]):
    """Whether any of the studies keeps an entry (see :meth:`StudyCacheUse.keeps`)."""
    uses = list(uses)
    return lambda entry: any(u.keeps(entry) for u in uses)


__all__ = ["StudyCacheUse", "home_cache_uses", "keep_predicate", "study_cache_use"]
