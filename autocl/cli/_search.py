"""``autocl search`` and ``autocl front``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional

import optuna
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from autocl.cli._common import bits_legend, console, front_table, handles_errors
from autocl.errors import ConfigError, StudyError, redact
from autocl.hardware import load_profile
from autocl.space import load_space
from autocl.study import (
    ROW_KEYS,
    SAMPLERS,
    default_storage,
    existing_storage,
    load_existing,
    prepare_run,
    run_search,
    trial_summary,
)
from autocl.workloads import DEFAULT_WORKLOAD, load_workload, with_options


def search_progress() -> Progress:
    """The progress bar of a search (``autocl search`` and ``autocl worker``): trials done, stage, time."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<34}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


class _ProgressReporter:
    def __init__(self, progress: Progress, total: int, verbose: bool = False) -> None:
        self.progress = progress
        self.verbose = verbose
        self.task = progress.add_task("starting", total=total)  # None: a time budget, no known total
        self.failed = 0

    def trial_started(self, number: int) -> None:
        self.progress.update(self.task, description=f"trial {number}: sampling")

    def stage(self, number: int, stage: str) -> None:
        label = stage if number < 0 else f"trial {number}: {stage}"
        self.progress.update(self.task, description=label)

    def note(self, text: str) -> None:  # a lasting line (e.g. what narrowing the space removed)
        self.progress.console.print(f"[yellow]{escape(text)}[/]", soft_wrap=True, highlight=False)

    def trial_finished(self, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state == optuna.trial.TrialState.FAIL:
            self.failed += 1
            error = trial.user_attrs.get("error", f"trial {trial.number} failed")
            self.progress.console.print(f"[yellow]{escape(error)}[/]", soft_wrap=True)
            if self.verbose and trial.user_attrs.get("traceback"):
                self.progress.console.print(escape(trial.user_attrs["traceback"].rstrip()), soft_wrap=True, style="dim")
        else:
            m, lat, x, size = trial_summary(trial)
            reused = " (student reused)" if trial.user_attrs.get("student_reused") else ""
            slower = [p for p, flag in trial.user_attrs.get("not_faster", {}).items() if flag]
            flagged = f" [yellow]not faster than fp32 on {', '.join(slower)}[/]" if slower else ""
            self.progress.console.print(
                f"trial {trial.number}: metric {m:.4f}, latency {lat:.3f} ms"
                + (f" ({x:.2f}x)" if x else "")
                + f", size {size:.1f} KB{reused}{flagged}"
            )
        self.progress.advance(self.task)


def search(
    workload: str = typer.Option(
        DEFAULT_WORKLOAD,
        help="built-in workload (mnist, digits, minilm), a registered name, or 'package.module:function' returning an autocl Workload",
    ),
    space: Path = typer.Option(Path("search_spaces/default.yaml"), help="search-space YAML: which knobs and ranges"),
    profile: Optional[list[str]] = typer.Option(
        None,
        help=(
            "hardware-profile YAML, or a name in hardware_profiles/ [default: cpu-local]; repeat it to measure every "
            "artifact on several targets (the first is the primary: its latency is the search objective)"
        ),
    ),
    study: str = typer.Option("demo", help="study name; an existing study of that name is resumed"),
    trials: Optional[int] = typer.Option(
        None,
        min=1,
        help=(
            "screened trials to add in this run (polishing runs come on top) [default: 12, or unbounded with --timeout]"
        ),
    ),
    timeout: Optional[str] = typer.Option(
        None,
        help=(
            "wall-clock budget of this run, e.g. 90s, 20m, 1.5h: the search stops cleanly after the trial running "
            "then, the last 15% going to polishing the front"
        ),
    ),
    max_drop: Optional[float] = typer.Option(
        None,
        "--max-drop",
        min=0.0,
        help=(
            "largest metric drop a member may have, in the metric's units (0.01 = one accuracy point): members "
            "beyond it are infeasible and off the front"
        ),
    ),
    polish: bool = typer.Option(
        True,
        "--polish/--no-polish",
        help=("distil the fastest pruned members near the front again with the space's long schedule (distill.polish)"),
    ),
    storage: Optional[str] = typer.Option(None, help="SQLAlchemy URL [default: sqlite:///studies/<study>.db]"),
    seed: int = typer.Option(0, help="seed of the sampler and of distillation"),
    sensitivity: Optional[bool] = typer.Option(
        None,
        "--sensitivity/--no-sensitivity",
        help=(
            "before the trials, quantize one layer at a time, store the metric drops in the study, rank the layers "
            "that fall back first and drop clearly hopeless choices (quant.sensitivity_max_drop) "
            "[default: on a new study, for the precisions where it is cheap: every one on a CNN, int8_dynamic "
            "on MiniLM]"
        ),
        show_default=False,
    ),
    fork: Optional[str] = typer.Option(
        None,
        help=(
            "when --study was made with other settings: start this new study instead, seeded with the old one's "
            "configurations that are still valid"
        ),
    ),
    warm_start: Optional[str] = typer.Option(
        None,
        help=(
            "seed the study with another study's Pareto-front configurations (e.g. the same model on another device)"
        ),
    ),
    sampler: str = typer.Option("tpe", help=f"Optuna sampler: {', '.join(SAMPLERS)} (seeded with --seed)"),
    cache_max_size: Optional[str] = typer.Option(
        None,
        "--cache-max",
        help=(
            "size budget of the artifact cache, e.g. 1GB: least recently used students and artifacts are evicted "
            "beyond it (never the front members', nor what a running or queued trial needs) and rebuilt when "
            "needed [default: AUTOCL_CACHE_MAX, else 10 GB or a quarter of the free disk, whichever is smaller]"
        ),
        show_default=False,
    ),
    train_limit: Optional[int] = typer.Option(
        None,
        "--train-limit",
        min=2,
        help=(
            "keep only N training rows for distillation and calibration (the scarce-data case; same validation "
            "split); stored with the study, so workers, export and remeasure use the same rows"
        ),
    ),
    verbose: bool = typer.Option(
        False,
        "--verbose",
        help=(
            "print the traceback of a trial that failed with an internal error (it is stored with the trial either way)"
        ),
    ),
) -> None:
    """Search compression configurations and print the Pareto front.

    A new study first runs the by-hand recipes (the whole model in each precision, at prune ratios
    0, 0.3, 0.5 and 0.7 with distillation), then searches around them. Every trial prunes
    (structured channels), distills briefly at the sampled temperature, exports ONNX, quantizes (one
    precision for the model, a few sensitive layers falling back), computes the metric with
    onnxruntime on that artifact, and measures its latency on the profile. The fastest pruned
    members near the front are then distilled again at length ("polished"). The study lives in an
    SQL database: running the same command again adds trials to it, and cached students are never
    trained twice. It ends with the fastest member within --max-drop and the command that exports it.

    Example: autocl search --workload mnist --profile cpu-edge-1t --timeout 20m --max-drop 0.01
    """
    handles_errors(_search)(
        workload,
        space,
        profile,
        study,
        trials,
        storage,
        seed,
        sensitivity,
        fork,
        warm_start,
        sampler,
        timeout=timeout,
        max_drop=max_drop,
        polish=polish,
        verbose=verbose,
        cache_max_size=cache_max_size,
        train_limit=train_limit,
    )


def cache_budget(text: str | None) -> int:
    """The run's cache budget in bytes: ``--cache-max``, else ``AUTOCL_CACHE_MAX``, else the default."""
    from autocl.compress import cache_max
    from autocl.runtime import cache_dir

    return cache_max(text, cache_dir())


def parse_duration(text: str | None) -> float | None:
    """'90', '90s', '20m', '1.5h' -> seconds; a bad value is a ConfigError naming --timeout."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smh]?)\s*", text)
    if not m or float(m.group(1)) <= 0:
        raise ConfigError(f"cannot read {text!r} as a duration: write e.g. 90s, 20m or 1.5h", field="--timeout")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def _search(
    workload,
    space,
    profile,
    study,
    trials,
    storage,
    seed,
    sensitivity=None,
    fork=None,
    warm_start=None,
    sampler="tpe",
    *,
    timeout=None,
    max_drop=None,
    polish=True,
    verbose=False,
    cache_max_size=None,
    train_limit=None,
) -> None:
    seconds = parse_duration(timeout)
    cache_bytes = cache_budget(cache_max_size)
    spec = with_options(workload, train_limit=train_limit)
    workload = workload.partition("?")[0]
    if trials is None and seconds is None:
        trials = 12
    space_cfg = load_space(space)
    profiles = [load_profile(p) for p in (profile or ["hardware_profiles/cpu-local.yaml"])]
    url = storage or default_storage(study)
    described = ", ".join(
        f"[bold]{p.name}[/] ({p.execution_provider if p.measure == 'local' else 'remote ' + (p.remote.url if p.remote else '?')}"
        f", {p.threads} thread(s), batch {p.batch_size})"
        for p in profiles
    )
    console.print(f"workload [bold]{spec}[/], space {space}, profile(s) {described}")
    # before the workload (whose teacher may train): names, a changed study, --fork, --warm-start
    plan = prepare_run(
        study, url, workload, space_cfg, profiles, fork=fork, warm_start=warm_start, storage_given=storage is not None
    )
    study, url = plan.study_name, plan.url
    wl = load_workload(spec)
    with search_progress() as progress:
        reporter = _ProgressReporter(progress, trials, verbose)
        result = run_search(
            wl,
            space_cfg,
            profiles,
            study_name=study,
            storage=url,
            n_trials=trials,
            seed=seed,
            reporter=reporter,
            sensitivity=sensitivity,
            sampler=sampler,
            seeds=plan.seeds,
            timeout=seconds,
            max_drop=max_drop,
            polish=polish,
            workload_spec=spec,
            cache_max_bytes=cache_bytes,
        )
    done = [t for t in result.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    console.print(
        f"study [bold]{study}[/] in {redact(url)}: {len(result.new_trials)} new trial(s), "
        f"{len(done)} complete in all, {reporter.failed} failed in this run"
    )
    for p in profiles:
        _print_front(url, study, p.name, result.study)
    _print_keeper(url, study, result.study, max_drop)


def _print_keeper(url: str, study_name: str, study: optuna.Study, max_drop: float | None) -> None:
    """Keep the fastest model that passes: the front member within the metric drop with the best
    comparable speed-up (``--pick fastest-within``), and the command that exports it."""
    from autocl.report import pick, study_data

    bound = 0.01 if max_drop is None else max_drop
    data = study_data(study)
    try:
        chosen = pick(data, f"fastest-within:{bound}")
    except StudyError as exc:
        console.print(f"[yellow]no member within a metric drop of {bound:g}[/]: {exc}", soft_wrap=True)
        return
    t = chosen.trial
    how = "" if max_drop is not None else " (no --max-drop given: 0.01 assumed)"
    if t.not_faster:  # the one flag of the record, decided on the search's measurements
        console.print(
            f"[yellow]no member within a metric drop of {bound:g}{how} is measurably faster than the fp32 "
            f"model[/] (the fastest, trial {t.number}, runs at {t.speedup_search or 0:.2f}x): keep the fp32 model, "
            "or widen the bound (--max-drop), the budget (--trials/--timeout) or the space",
            soft_wrap=True,
        )
        return
    # a password is never printed: the hint shows *** where it goes (or keep it in ~/.pgpass)
    storage = "" if url == default_storage(study_name) else f" --storage '{redact(url)}'"
    # ranked and named by the comparable speed-up: re-measured when present, else the search's
    if t.speedup_remeasured is not None:
        speed = f", {t.speedup_remeasured:.2f}x the fp32 model re-measured ({t.speedup_search or 0:.2f}x in the search)"
    elif t.speedup_search:
        speed = f", {t.speedup_search:.2f}x the fp32 model (speed-up measured in the search)"
    else:
        speed = ""
    console.print(
        f"fastest member within a metric drop of {bound:g}{how}: trial {t.number}, "
        f"{data.metric_name} {t.metric:.4f} ({t.metric_change:+.4f}), {t.latency_ms:.3f} ms{speed}",
        soft_wrap=True,
    )
    console.print(
        f"export it: autocl export --study {study_name}{storage} --trial {t.number} -o exports/{study_name}-trial{t.number}",
        soft_wrap=True,
    )


def _front_data(study: optuna.Study, profile: str | None):
    """The study on ``profile`` (default: the primary), as every view reads it (the study record)."""
    from autocl.report import study_data

    return study_data(study, profile)


def _print_front(url: str, study_name: str, profile: str | None, study: optuna.Study) -> None:
    from autocl.report import require_front

    data = _front_data(study, profile)
    rows = require_front(data)  # or why there is no front
    table = front_table(
        rows,
        metric_name=data.metric_name,
        baseline=data.baseline,
        title=f"Pareto front of '{study_name}' on profile '{data.profile}' ({len(rows)} of {len(data.trials)} trials)",
    )
    console.print(table)
    console.print(
        f"[dim]ordered by speed-up over fp32 (re-measured where present, else the search's): raw ms taken "
        f"minutes apart are not comparable. {bits_legend()}; layers: {' '.join(data.layers)}[/]",
        soft_wrap=True,
    )


def front(
    study: str = typer.Option("demo", help="study name"),
    storage: Optional[str] = typer.Option(None, help="SQLAlchemy URL [default: sqlite:///studies/<study>.db]"),
    profile: Optional[str] = typer.Option(
        None, help="profile name (a study keeps one front per profile) [default: the study's primary profile]"
    ),
    fmt: str = typer.Option("table", "--format", help="table, csv or json"),
) -> None:
    """Print the Pareto front of a study, read from autocl's table in the study database.

    Example: autocl front --study demo --format csv > front.csv
    """
    handles_errors(_front)(study, storage, profile, fmt)


def _front(study_name, storage, profile, fmt) -> None:
    if fmt not in ("table", "csv", "json"):
        raise StudyError(f"unknown --format {fmt!r}; use table, csv or json")
    url = existing_storage(study_name, storage)
    study = load_existing(study_name, url)
    if fmt == "table":
        _print_front(url, study_name, profile, study)
        return
    rows = [r.to_row() for r in _front_data(study, profile).front]
    if fmt == "json":
        # print, not console.print_json: keep the numbers exactly as stored (json round-trips floats)
        print(json.dumps(rows, indent=2))
    else:
        import csv
        import sys

        writer = csv.DictWriter(sys.stdout, fieldnames=list(ROW_KEYS))
        writer.writeheader()
        writer.writerows(rows)
