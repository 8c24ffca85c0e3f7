"""Create or resume a study on an SQLAlchemy URL, refusing to mix incompatible searches."""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from autocl.errors import StudyError
from autocl.runtime import home_dir
from autocl.study._tables import engine_for

OBJECTIVES = ("metric", "latency_ms", "size_kb")
HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 40

optuna.logging.set_verbosity(optuna.logging.WARNING)
# heartbeats and metric names are marked experimental; they are what autocl is built on, on purpose
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def default_storage(study_name: str) -> str:
    """``sqlite:///<AUTOCL_HOME>/<study>.db`` (``studies/`` by default)."""
    home = home_dir()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / (study_name + '.db')}"


def make_storage(url: str) -> RDBStorage:
    """RDB storage with heartbeats: a killed worker's trial is failed (and retried once) instead of
    staying RUNNING forever."""
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    try:
        storage = RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_SECONDS,
                             grace_period=GRACE_SECONDS,
                             heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
    except Exception as exc:  # bad URL, unreachable server, missing driver
        raise StudyError(f"cannot open storage {url!r}: {exc}. Give an SQLAlchemy URL such as "
                         "sqlite:///studies/demo.db or postgresql://user@host/db") from None
    engine_for(url)
    return storage


def open_study(name: str, url: str, fingerprint: dict, *, higher_is_better: bool) -> optuna.Study:
    """Create the study, or resume it when ``fingerprint`` (workload, space, profile names in order)
    matches."""
    storage = make_storage(url)
    directions = ["maximize" if higher_is_better else "minimize", "minimize", "minimize"]
    study = optuna.create_study(study_name=name, storage=storage, directions=directions, load_if_exists=True)
    stored = study.user_attrs.get("fingerprint")
    if stored is None:
        study.set_metric_names(list(OBJECTIVES))
        study.set_user_attr("fingerprint", fingerprint)
        return study
    for key in ("workload", "workload_key", "space", "profile"):
        if _normalized(key, stored.get(key)) != _normalized(key, fingerprint.get(key)):
            raise StudyError(
                f"study {name!r} in {url} was created with {key} = {stored.get(key)!r}, not "
                f"{fingerprint.get(key)!r}; resume it with the same {key}, or start a new study with another --study name"
            )
    return study


def _normalized(key: str, value):
    """Studies made before multi-profile search stored one profile name, not a list of them."""
    return [value] if key == "profile" and isinstance(value, str) else value


def load_existing(name: str, url: str) -> optuna.Study:
    """Open a study that must exist; the error lists the studies that do."""
    storage = make_storage(url)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if name not in names:
        known = ", ".join(names) if names else "none"
        raise StudyError(f"no study named {name!r} in {url} (studies there: {known}); "
                         "run 'autocl search --study NAME' first, or pass the right --storage")
    return optuna.load_study(study_name=name, storage=storage)
