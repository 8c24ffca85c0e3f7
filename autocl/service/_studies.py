"""Reading studies for the API: what exists, how far each got, its front, trials and Pareto plots,
and a verified export bundle as a zip.

Every number comes from the functions the CLI uses: the front from the study record's rows
(``TrialRecord.to_row``, what ``autocl front --format json`` prints), trials and figures from ``autocl.report``, bundles
from ``autocl.api.StudyView.export`` (what ``autocl export`` calls). Nothing here writes to a study.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import threading
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import optuna

from autocl.errors import StudyError
from autocl.runtime import home_dir
from autocl.service._inputs import STUDY_NAME, InputError, check_study_name, workload_names

_STORAGES: dict[str, object] = {}
_STORAGE_LOCK = threading.Lock()
_EXPORT_LOCK = threading.Lock()  # one export at a time: each re-measures latency, they must not overlap


def study_path(name: str) -> Path:
    return home_dir() / f"{check_study_name(name)}.db"


def study_url(name: str) -> str:
    """The study's storage: ``sqlite:///<AUTOCL_HOME>/<name>.db``, as ``autocl search`` defaults to."""
    return f"sqlite:///{study_path(name)}"


def _storage(url: str):
    from autocl.study import make_storage

    with _STORAGE_LOCK:
        if url not in _STORAGES:
            _STORAGES[url] = make_storage(url)
        return _STORAGES[url]


def _initialized(path: Path) -> bool:
    """Optuna's and autocl's tables are all there: opening the storage now creates nothing. A worker
    that is creating them must not race with the server doing the same."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {"version_info", "alembic_version", "autocl_pareto_front"} <= tables:
                return False
            return db.execute("SELECT count(*) FROM alembic_version").fetchone()[0] > 0
    except sqlite3.Error:
        return False


def open_study(name: str) -> optuna.Study:
    """An existing study, or a 404 (never creates a database file, nor tables in one)."""
    path = study_path(name)
    if not path.is_file():
        raise InputError(404, f"no study named {name!r} (no database {path.name} in AUTOCL_HOME)")
    if not _initialized(path):
        raise InputError(404, f"study {name!r} is being created; try again in a moment")
    storage = _storage(study_url(name))
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise InputError(404, f"no study named {name!r} in {study_path(name).name}") from None


@dataclass(frozen=True)
class Progress:
    """Trials of a study numbered ``since`` or later, by state, and the best so far on its primary front.

    ``failed`` trials failed with an error (stored in the trial); ``interrupted`` ones were cut off by
    a stop or a shutdown (failed without an error of their own) and do not use up a trial budget;
    ``polished`` complete ones were polishing runs, which come on top of it."""

    complete: int = 0
    polished: int = 0
    failed: int = 0
    interrupted: int = 0
    running: int = 0
    front_size: int = 0
    best_metric: float | None = None
    fastest_latency_ms: float | None = None

    @property
    def screened(self) -> int:
        """Trials that count against a trial budget."""
        return self.complete - self.polished + self.failed

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _cut_off(error: str | None) -> bool:
    """A failed trial that was interrupted (Ctrl-C, SIGTERM, a stop) or whose process died, as the
    search records them, rather than one that failed on its own."""
    return error is None or ": interrupted (" in error or "died while the trial ran" in error


def progress(name: str, since: int = 0) -> Progress:
    """How far a study got (trials numbered ``since`` or later); empty when it does not exist yet."""
    from autocl.study import front_records

    if not study_path(name).is_file():
        return Progress()
    try:
        study = open_study(name)
    except InputError:
        return Progress()
    counts = {s: 0 for s in optuna.trial.TrialState}
    interrupted = polished = 0
    for t in study.get_trials(deepcopy=False):
        if t.number >= since:
            counts[t.state] += 1
            interrupted += t.state == optuna.trial.TrialState.FAIL and _cut_off(t.user_attrs.get("error"))
            polished += t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs.get("polish_of") is not None
    primary = _primary(study)
    rows = front_records(study, primary) if primary else []  # the study record's front
    higher = bool((study.user_attrs.get("workload") or {}).get("higher_is_better", True))
    metrics = [r.metric for r in rows if r.metric is not None]
    state = optuna.trial.TrialState
    return Progress(
        complete=counts[state.COMPLETE],
        polished=polished,
        failed=counts[state.FAIL] - interrupted,
        interrupted=interrupted,
        running=counts[state.RUNNING],
        front_size=len(rows),
        best_metric=(max(metrics) if higher else min(metrics)) if metrics else None,
        fastest_latency_ms=min((r.latency_ms for r in rows if r.latency_ms is not None), default=None),
    )


def trial_count(name: str) -> int:
    if not study_path(name).is_file():
        return 0
    try:
        return len(open_study(name).get_trials(deepcopy=False))
    except InputError:
        return 0


def _primary(study: optuna.Study) -> str | None:
    """The primary profile, read as ``autocl front`` reads it."""
    return (study.user_attrs.get("profile") or {}).get("name")


def summary(name: str) -> dict:
    study = open_study(name)
    wl = study.user_attrs.get("workload") or {}
    fp = study.user_attrs.get("fingerprint") or {}
    from autocl.study import measured_profiles

    return {
        "name": name,
        "workload": wl.get("name") or fp.get("workload"),
        "metric_name": wl.get("metric"),
        "higher_is_better": wl.get("higher_is_better"),
        "primary_profile": _primary(study),
        "profiles": measured_profiles(study),
        "baseline": {k: v for k, v in (study.user_attrs.get("baseline") or {}).items() if k != "path"} or None,
        "trials": len(study.get_trials(deepcopy=False)),
        "progress": progress(name).to_dict(),
    }


def list_studies() -> list[dict]:
    """Every study database in AUTOCL_HOME whose study has the file's name."""
    home = home_dir()
    out = []
    for path in sorted(home.glob("*.db")) if home.is_dir() else []:
        if not re.fullmatch(STUDY_NAME, path.stem):
            continue
        try:
            out.append(summary(path.stem))
        except (InputError, StudyError):
            continue  # a database of another name, or one being created right now
    return out


def front(name: str, profile: str | None) -> list[dict]:
    """The front, exactly as ``autocl front --format json`` prints it (the study record's rows)."""
    return [t.to_row() for t in _data(name, profile).front]


def _data(name: str, profile: str | None):
    from autocl.report import study_data

    study = open_study(name)
    try:
        return study_data(study, profile)
    except StudyError as exc:
        raise InputError(404, str(exc)) from None


def trials(name: str, profile: str | None) -> list[dict]:
    """Every trial with its status on the profile and the reason for anything off the front
    (``StudyView.trials``'s rows)."""
    from autocl.report import trials_frame

    return json.loads(trials_frame(_data(name, profile)).to_json(orient="records"))


def figures(name: str, profile: str | None) -> dict:
    """The report's Pareto figures (plotly JSON), drawn by the report's own code."""
    from autocl.report import pareto_3d, pareto_figure

    data = _data(name, profile)
    figs = {
        "pareto-latency": pareto_figure(data, "latency_ms"),
        "pareto-size": pareto_figure(data, "size_kb"),
        "pareto-3d": pareto_3d(data),
    }
    return {
        "study": name,
        "profile": data.profile,
        "profiles": list(data.profiles),
        "figures": {k: json.loads(f.to_json()) for k, f in figs.items()},
    }


def export_zip(
    name: str, trial: int | None, pick: str | None, profile: str | None, latency_tolerance: float | None = None
) -> tuple[Path, str]:
    """Export and verify one trial the way ``autocl export`` does, then zip the bundle. Returns the
    zip (in a folder the caller removes, see :func:`discard`) and a download name."""
    from autocl.api import StudyView
    from autocl.errors import AutoclError

    study = open_study(name)
    recorded = (study.user_attrs.get("workload") or {}).get("name")
    if recorded not in workload_names():
        raise InputError(
            422,
            f"study {name!r} was made with workload {recorded!r}, which is not registered; "
            "export it with 'autocl export' where that workload is importable",
        )
    work = home_dir() / "service" / "exports" / uuid.uuid4().hex
    out = work / "bundle"
    try:
        with _EXPORT_LOCK:
            extra = {} if latency_tolerance is None else {"latency_tolerance": latency_tolerance}
            result = StudyView(study, study_url(name)).export(out, trial=trial, pick=pick, profile=profile, **extra)
    except AutoclError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise InputError(404 if "has no trial" in str(exc) else 422, str(exc)) from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    label = f"{name}-trial-{result.trial.number}"
    archive = work / f"{label}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(out.rglob("*")):
            if f.is_file():
                zf.write(f, f"{label}/{f.relative_to(out)}")
    shutil.rmtree(out)
    return archive, f"{label}.zip"


def discard(archive: Path) -> None:
    shutil.rmtree(archive.parent, ignore_errors=True)


__all__ = [
    "Progress",
    "discard",
    "export_zip",
    "figures",
    "front",
    "list_studies",
    "open_study",
    "progress",
    "study_url",
    "summary",
    "trial_count",
    "trials",
]
