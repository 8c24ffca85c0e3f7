"""``autocl worker``: join an existing study and run trials on it, with the study's own settings.

A worker reads what the study was made with from the study itself (user attrs ``workload``,
``space``, ``profiles`` and ``max_drop``, stored by :func:`autocl.study.run_search`) and runs
``run_search`` with them, the same code path as ``autocl search``. Several workers, on one machine
or many, share one study through its database (PostgreSQL across machines): Optuna hands out the
trials, each worker measures on its own device. There is no scheduler.
"""

from __future__ import annotations

import os
import socket
from typing import Optional

import optuna
import typer

from autocl.cli._common import console, handles_errors
from autocl.cli._search import _print_front, _ProgressReporter, cache_budget, parse_duration, search_progress
from autocl.errors import StudyError, redact
from autocl.hardware import HardwareProfile, profile_from_dict
from autocl.space import SearchSpace
from autocl.study import SAMPLERS, load_existing, prepare_run, run_search, workload_spec
from autocl.workloads import load_workload


def worker(
    study: str = typer.Option(..., help="name of the study to join (made by 'autocl search')"),
    storage: str = typer.Option(
        ...,
        help=(
            "the study's SQLAlchemy URL, the same for every worker: postgresql://user:password@host:5432/db "
            "(several machines), or sqlite:///path.db (one machine)"
        ),
    ),
    trials: Optional[int] = typer.Option(
        None,
        min=1,
        help=("trials this worker runs (polishing runs come on top) [default: 12, or unbounded with --timeout]"),
    ),
    timeout: Optional[str] = typer.Option(None, help="wall-clock budget of this worker, e.g. 90s, 20m, 1.5h"),
    seed: Optional[int] = typer.Option(
        None,
        help=(
            "seed of this worker's sampler [default: the process id, so workers started at once do not sample alike]"
        ),
    ),
    polish: bool = typer.Option(True, "--polish/--no-polish", help="take part in polishing the front"),
    sampler: str = typer.Option("tpe", help=f"Optuna sampler: {', '.join(SAMPLERS)}"),
    cache_max_size: Optional[str] = typer.Option(
        None,
        "--cache-max",
        help=(
            "size budget of this machine's artifact cache, e.g. 1GB (least recently used entries are evicted; "
            "never the front members') [default: AUTOCL_CACHE_MAX, else 10 GB or a quarter of the free disk]"
        ),
        show_default=False,
    ),
) -> None:
    """Join an existing study and run trials on it, sharing the work with every other worker.

    The workload, search space, hardware profiles and --max-drop are the study's own, read from
    the study; this machine measures latency on its own device with those profiles. Start as many
    workers as you like, on this machine or others, with the same --study and --storage; each trial
    is run by one worker, and the study keeps one Pareto front per profile.

    Example: autocl worker --study mnist-edge --storage postgresql://autocl@db-host/autocl --timeout 2h
    """
    handles_errors(_worker)(study, storage, trials, timeout, seed, polish, sampler, cache_max_size)


def stored_settings(st: optuna.Study, url: str) -> tuple[str, SearchSpace, list[HardwareProfile], float | None]:
    """The workload spec (:func:`autocl.study.workload_spec`), search space, profiles (primary first)
    and max drop a study was made with."""
    attrs = st.user_attrs
    missing = [k for k in ("workload", "space", "profiles") if k not in attrs]
    if missing:
        raise StudyError(
            f"study {st.study_name!r} in {url} has no stored {', '.join(missing)} (it has no trial yet, "
            "or an older autocl made it): run 'autocl search' on it once, then start workers"
        )
    source = f"study {st.study_name!r}"
    space = SearchSpace.model_validate(attrs["space"]).model_copy(update={"source": source})
    stored = attrs["profiles"]
    order = (attrs.get("fingerprint") or {}).get("profile") or []
    order = [order] if isinstance(order, str) else order
    primary = (attrs.get("profile") or {}).get("name")
    names = [n for n in order if n in stored] or sorted(stored, key=lambda n: n != primary)
    profiles = [profile_from_dict(stored[n], source=f"{source}, profile {n!r}") for n in names]
    return workload_spec(st) or attrs["workload"]["name"], space, profiles, attrs.get("max_drop")


def _worker(study, storage, trials, timeout, seed, polish, sampler, cache_max_size=None) -> None:
    seconds = parse_duration(timeout)
    cache_bytes = cache_budget(cache_max_size)
    if trials is None and seconds is None:
        trials = 12
    st = load_existing(study, storage)
    workload, space, profiles, max_drop = stored_settings(st, storage)
    seed = os.getpid() if seed is None else seed
    me = f"{socket.gethostname()}:{os.getpid()}"
    console.print(
        f"worker {me} joins study [bold]{study}[/] ({redact(storage)}): workload [bold]{workload}[/], profile(s) "
        f"{', '.join(p.name for p in profiles)}, sampler seed {seed}",
        soft_wrap=True,
    )
    # checks the stored fingerprint and restores the study's teacher into this machine's cache
    plan = prepare_run(study, storage, st.user_attrs["workload"]["name"], space, profiles)
    wl = load_workload(workload)
    with search_progress() as progress:
        reporter = _ProgressReporter(progress, trials)
        result = run_search(
            wl,
            space,
            profiles,
            study_name=plan.study_name,
            storage=plan.url,
            n_trials=trials,
            timeout=seconds,
            max_drop=max_drop,
            polish=polish,
            sampler=sampler,
            sampler_seed=seed,
            reporter=reporter,
            workload_spec=workload,
            cache_max_bytes=cache_bytes,
        )
    done = [t for t in result.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    console.print(
        f"worker {me}: {len(result.new_trials)} trial(s) of its own ({reporter.failed} failed); study "
        f"[bold]{study}[/] has {len(done)} complete trial(s) from all workers"
    )
    _print_front(storage, study, profiles[0].name, result.study)
