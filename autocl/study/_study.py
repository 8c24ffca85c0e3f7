"""Create or resume a study on an SQLAlchemy URL, refusing to mix incompatible searches."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from autocl.errors import StudyError
from autocl.runtime import home_dir
from autocl.study._claims import schema_lock
from autocl.study._fingerprint import check_fingerprint, check_study_name
from autocl.study._record import NORMALIZED
from autocl.study._tables import driver_url, engine_for
from autocl.study._teacher import keep_teacher
from autocl.study._trial_run import reap_dead_trials

OBJECTIVES = ("metric", "normalized_ms", "size_kb")
"""A new study's Optuna objectives: the latency is the comparable one (:func:`autocl.study._record.normalized_ms`);
studies made before it was (no ``latency_objective`` attribute) keep the raw median, named ``latency_ms``."""
HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 40


@contextmanager
def _experimental_ok() -> Iterator[None]:
    """Heartbeats and metric names are marked experimental; they are what autocl is built on, on
    purpose. Silenced where autocl calls them, not process-wide."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        yield


def default_storage(study_name: str) -> str:
    """The default database URL of a study: ``sqlite:///<AUTOCL_HOME>/<study>.db``.

    ``AUTOCL_HOME`` is ``studies/`` by default; the directory is created.

    Args:
        study_name: The study's name.

    Returns:
        The SQLite URL.

    Raises:
        StudyError: The name is not allowed (see :func:`check_study_name`).
    """
    check_study_name(study_name)
    home = home_dir()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / (study_name + '.db')}"


def make_storage(url: str) -> RDBStorage:
    """RDB storage with heartbeats.

    A killed worker's trial is failed (and retried once) instead of staying RUNNING forever.
    ``postgresql://`` URLs use psycopg 3 (``postgresql+psycopg://``).

    Args:
        url: An SQLAlchemy database URL; an SQLite file's directory is created.

    Returns:
        The Optuna storage.

    Raises:
        StudyError: The storage cannot be opened (bad URL, unreachable server, missing driver).
    """
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not path.startswith("file:"):  # an SQLite URI (file:...?mode=ro) names no folder to make
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    with schema_lock(url), _experimental_ok():  # workers starting at once on a fresh database: one creates the tables
        try:
            storage = RDBStorage(
                driver_url(url),
                engine_kwargs=kwargs,
                heartbeat_interval=HEARTBEAT_SECONDS,
                grace_period=GRACE_SECONDS,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
            )
        except Exception as exc:  # bad URL, unreachable server, missing driver
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StudyError(
                f"cannot open storage {url!r}: {detail}. Give an SQLAlchemy URL such as "
                "sqlite:///studies/demo.db or postgresql://user@host/db"
            ) from None
        engine_for(url)
    return storage


def open_study(name: str, url: str, fingerprint: dict, *, higher_is_better: bool) -> optuna.Study:
    """Create the study, or resume it when its fingerprint matches.

    ``fingerprint`` (see ``study_fingerprint``) covers the workload, space and profile contents; a
    mismatch is refused with what changed, in words. The study keeps a copy of the workload's cached
    teacher, and a trial left RUNNING by a dead process of this machine is failed and retried at once.

    Args:
        name: The study's name.
        url: The database URL.
        fingerprint: The run's fingerprint (its ``teacher`` entry, if any, is kept, not compared).
        higher_is_better: Whether the workload's metric is maximized.

    Returns:
        The Optuna study, with the objectives (metric, latency, size); a new one's latency is the
        comparable ``normalized_ms``.

    Raises:
        StudyError: The name is not allowed, the storage cannot be opened, or the stored fingerprint
            differs from ``fingerprint``.
    """
    check_study_name(name)
    fingerprint = dict(fingerprint)
    teacher = fingerprint.pop("teacher", None)
    storage = make_storage(url)
    directions: list[Literal["minimize", "maximize"]] = [
        "maximize" if higher_is_better else "minimize",
        "minimize",
        "minimize",
    ]
    study = optuna.create_study(study_name=name, storage=storage, directions=directions, load_if_exists=True)
    stored = study.user_attrs.get("fingerprint")
    if stored is None:
        if not study.trials:  # what its latency objective is, decided once per study (latency_objective)
            study.set_user_attr("latency_objective", NORMALIZED)
        with _experimental_ok():
            study.set_metric_names(list(OBJECTIVES) if not study.trials else ["metric", "latency_ms", "size_kb"])
        study.set_user_attr("fingerprint", fingerprint)
    else:
        check_fingerprint(name, url, stored, fingerprint)
        if "profile_content" not in stored:  # made by an older autocl: record the contents from now on
            study.set_user_attr("fingerprint", {**stored, **fingerprint})
    keep_teacher(url, name, teacher)
    reap_dead_trials(study)
    return study


def sqlite_file(url: str) -> Path | None:
    """The file of an ``sqlite:///PATH`` URL.

    Args:
        url: A database URL.

    Returns:
        The file's path, or None for a server, an in-memory or a URI database.
    """
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///") :]
    return None if not path or path.startswith("file:") or path == ":memory:" else Path(path)


def existing_storage(name: str, storage: str | None = None) -> str:
    """The URL of study ``name``'s database, checked to exist.

    A missing SQLite file is refused: opening it would create an empty database, which is what a
    mistyped study name or path would otherwise do.

    Args:
        name: The study's name.
        storage: The database URL (default: :func:`default_storage`).

    Returns:
        The URL.

    Raises:
        StudyError: The URL is an SQLite file that does not exist, or the name is not allowed.
    """
    url = storage or default_storage(name)
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        how = "pass the right --storage" if storage else "or pass --storage (e.g. sqlite:///path/to/study.db)"
        raise StudyError(f"no study database at {path}; run 'autocl search --study {name}' first, {how}")
    return url


def workload_spec(study: optuna.Study) -> str | None:
    """How to load the study's workload again.

    Args:
        study: The study.

    Returns:
        The spec it was searched with (a built-in, a registered name or ``module:function``), else its
        name (studies made before specs were stored), else None.
    """
    wl = study.user_attrs.get("workload") or {}
    return wl.get("spec") or wl.get("name")


def _normalized(key: str, value):
    """Studies made before multi-profile search stored one profile name, not a list of them."""
    return [value] if key == "profile" and isinstance(value, str) else value


def load_existing(name: str, url: str) -> optuna.Study:
    """Open a study that must exist.

    The error lists the studies that do. A missing SQLite file is refused (see
    :func:`existing_storage`), never created.

    Args:
        name: The study's name.
        url: The database URL.

    Returns:
        The Optuna study.

    Raises:
        StudyError: The name is not allowed, the database is missing or cannot be opened, or it holds
            no study ``name``.
    """
    check_study_name(name)
    existing_storage(name, url)
    storage = make_storage(url)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if name not in names:
        known = ", ".join(names) if names else "none"
        raise StudyError(
            f"no study named {name!r} in {url} (studies there: {known}); "
            "run 'autocl search --study NAME' first, or pass the right --storage"
        )
    return optuna.load_study(study_name=name, storage=storage)
