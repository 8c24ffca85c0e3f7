"""Run a search: each trial compresses, evaluates on the artifact and measures latency.

Trials run through ``study.optimize`` (so Optuna's heartbeats apply). A trial that fails becomes
a FAIL trial with its error stored in ``user_attrs['error']``; the study and all measured trials
survive. Every artifact is measured on each profile (the first is the primary: its comparable
latency, the study's fp32 baseline over the speed-up measured in alternation with fp32, is the
objective of a new study; an older study keeps its raw median); after every trial each profile's Pareto front is written to autocl's own table, and at
the end the fronts are re-measured.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import optuna
from optuna.exceptions import UpdateFinishedTrialError

from autocl.compress import CacheBudget, Compressor, cache_max
from autocl.compress.depth import check_depth
from autocl.compress.size import compressed_size
from autocl.config import CompressionConfig
from autocl.errors import AutoclError, ConfigError, StudyError, TrialError
from autocl.evaluate import evaluate_artifact, metric_drop
from autocl.hardware import HardwareProfile
from autocl.runtime import cache_dir, release_memory
from autocl.space import SearchSpace, recipe_params
from autocl.study._cache_use import home_cache_uses, keep_predicate, study_cache_use
from autocl.study._claims import claim
from autocl.study._disk import ADVICE, DiskFullRun, disk_full, storage_failure
from autocl.study._fidelity import enqueue_promotions, promotions
from autocl.study._fingerprint import study_fingerprint
from autocl.study._front import write_front
from autocl.study._polish import enqueue_polish, polish_candidates
from autocl.study._record import (
    NORMALIZED,
    is_compressed,
    latency_objective,
    normalized_ms,
    pruning_applied,
    write_config,
    write_error,
    write_result,
)
from autocl.study._remeasure import remeasure_front
from autocl.study._samplers import make_sampler
from autocl.study._seeds import Seed, enqueue_seeds
from autocl.study._sensitivity import prepare_space
from autocl.study._study import open_study, sqlite_file
from autocl.study._targets import (
    as_profiles,
    constraint_names,
    constraint_values,
    measure_baselines,
    measure_targets,
    narrowing,
    record_narrowing,
)
from autocl.study._teacher import teacher_record
from autocl.study._trial_run import TrialRun, quiet_optuna_failures
from autocl.workloads import Workload, n_samples

WAITING, RUNNING = optuna.trial.TrialState.WAITING, optuna.trial.TrialState.RUNNING


class Reporter(Protocol):
    """Receives the progress of :func:`run_search`."""

    def trial_started(self, number: int) -> None:
        """Called when trial ``number`` starts.

        Args:
            number: The trial's number.
        """
        ...

    def stage(self, number: int, stage: str) -> None:
        """Called when trial ``number``, or the search, enters a stage (pruning, distilling, ...).

        Args:
            number: The trial's number, or -1 for a stage of the whole search (the baseline, polishing,
                re-measuring).
            stage: A short description of the stage.
        """
        ...

    def trial_finished(self, trial: optuna.trial.FrozenTrial) -> None:
        """Called when a trial ends (completed, pruned or failed).

        Args:
            trial: The finished trial.
        """
        ...


class SilentReporter:
    """A :class:`Reporter` that reports nothing."""

    def trial_started(self, number: int) -> None:
        pass

    def stage(self, number: int, stage: str) -> None:
        pass

    def trial_finished(self, trial: optuna.trial.FrozenTrial) -> None:
        pass


@dataclass
class SearchResult:
    study: optuna.Study
    storage: str
    profile: HardwareProfile
    baseline: dict
    new_trials: list[int] = field(default_factory=list)
    profiles: list[HardwareProfile] = field(default_factory=list)
    remeasured: dict = field(default_factory=dict)
    limits: SearchLimits | None = None
    seconds: float = 0.0


def _eval_profile(profiles: list[HardwareProfile]) -> HardwareProfile:
    """The profile whose session computes the metric: the first local one, else plain CPU."""
    for p in profiles:
        if p.measure == "local" and p.unavailable_reason() is None:
            return p
    return HardwareProfile(name="cpu-eval")


def _baseline(study: optuna.Study, compressor: Compressor, workload: Workload, profiles: list[HardwareProfile]) -> dict:
    """The unpruned fp32 teacher, evaluated once per study and measured once per profile: the
    reference point. ``baselines[profile]``; ``baseline`` is the primary's."""
    stored = dict(study.user_attrs.get("baselines", {}))
    missing = [p for p in profiles if p.name not in stored]
    if not missing and "baseline" in study.user_attrs:
        return study.user_attrs["baseline"]
    path = compressor.baseline()
    metric = study.user_attrs.get("baseline", {}).get("metric")
    if metric is None:
        metric = evaluate_artifact(path, workload, _eval_profile(profiles))
    for name, m in measure_baselines(path, missing, workload).items():
        stored[name] = {
            "metric": metric,
            "latency_ms": m.median_ms,
            "latency_iqr_ms": m.iqr_ms,
            "size_kb": compressed_size(path) / 1024,
            "path": str(path),
            "measurement": m.to_dict(),
        }
    base = {k: v for k, v in stored[profiles[0].name].items() if k != "measurement"}
    study.set_user_attr("baselines", stored)
    study.set_user_attr("baseline", base)
    return base


def _objective(
    compressor: Compressor,
    space: SearchSpace,
    profiles: list[HardwareProfile],
    reporter: Reporter,
    limits: SearchLimits,
    baseline: dict,
    objective_kind: str,
):
    workload = compressor.workload
    primary, eval_profile = profiles[0], _eval_profile(profiles)
    n_train = n_samples(workload.train[0])

    internal = InternalErrors()
    full = DiskFullRun()

    def objective(trial: optuna.Trial) -> tuple[float, float, float]:
        with compressor.holding():  # what the trial uses is not evicted under it
            return held_objective(trial)

    def held_objective(trial: optuna.Trial) -> tuple[float, float, float]:
        reporter.trial_started(trial.number)
        stage = "sampling"

        def on_stage(name: str) -> None:
            nonlocal stage
            stage = name
            reporter.stage(trial.number, name)

        try:
            cfg = space.suggest(trial, compressor.layers)
            rung = trial.user_attrs.get("rung", 0) if space.distill.fidelity is not None else None
            if rung:  # promoted on the ladder: its student resumes from the last rung's checkpoint
                cfg = cfg.model_copy(update={"distill": space.at_rung(cfg.distill, rung)})
            if trial.user_attrs.get("polish_of") is not None:
                cfg = space.polished(cfg, n_train)
            write_config(trial, cfg.to_dict(), cfg.quant.compact(compressor.layers))
            t0 = time.perf_counter()
            artifact = compressor.artifact(cfg, on_stage)
            t_compress = time.perf_counter() - t0
            on_stage("evaluating")
            t1 = time.perf_counter()
            metric = evaluate_artifact(artifact.path, workload, eval_profile)
            if math.isnan(metric):
                raise TrialError(
                    f"the {workload.metric_name} is NaN on the validation split: the artifact gives "
                    "non-finite outputs (try fewer int8 layers or a lower distill.lr)",
                    trial=trial.number,
                    stage="evaluating",
                )
            on_stage("measuring")
            t2 = time.perf_counter()
            compressed = is_compressed(cfg.to_dict(), artifact.precisions)
            results = measure_targets(artifact.path, compressor.baseline(), profiles, workload, compressed=compressed)
            m = results[primary.name].measurement
            size = artifact.compressed_size_bytes
            assert size is not None  # the pipeline always computes it
            constraints = None
            if any(p.budgets.items() for p in profiles) or limits.max_drop is not None:
                constraints = constraint_values(profiles, results, size)
                if limits.max_drop is not None:
                    drop = metric_drop(metric, baseline["metric"], workload.higher_is_better)
                    constraints.append(
                        drop / limits.max_drop - 1 if limits.max_drop > 0 else (1.0 if drop > 0 else -1.0)
                    )
            write_result(
                trial,
                config=cfg.to_dict(),
                artifact=artifact,
                results=results,
                pruning=_pruning_record(cfg, artifact.student.achieved),
                constraints=constraints,
                rung=rung if artifact.student.fidelity else None,
                seconds={
                    "compress": round(t_compress, 3),
                    "evaluate": round(t2 - t1, 3),
                    "measure": round(time.perf_counter() - t2, 3),
                },
            )
            internal.succeeded()
            latency = m.median_ms
            if objective_kind == NORMALIZED:  # comparable across trials: the ratio measured side by side
                latency = normalized_ms(baseline.get("latency_ms"), results[primary.name].speedup) or latency
            full.succeeded()
            return metric, latency, size / 1024
        except AutoclError as exc:
            error = exc if isinstance(exc, TrialError) else TrialError(str(exc), trial=trial.number, stage=stage)
            write_error(trial, str(error))
            internal.succeeded()  # a known refusal breaks a run of identical internal errors
            full.succeeded()
            raise error from None
        except Exception as exc:  # any crash inside one trial fails that trial, not the study
            fact = disk_full(exc, compressor.cache_root)
            if fact is not None:  # one line, no traceback; a few in a row stop the search
                error = TrialError(f"{fact}: {ADVICE}", trial=trial.number, stage=stage)
                write_error(trial, str(error))
                full.failed(trial.number, fact)
                raise error from None
            error = TrialError(f"{type(exc).__name__}: {exc}", trial=trial.number, stage=stage)
            write_error(trial, str(error), traceback.format_exc())
            internal.failed(trial.number, stage, f"{type(exc).__name__}: {exc}")
            raise error from None

    return objective


class InternalErrors:
    """Stops a search that can only fail: after ``limit`` identical internal errors in a row (a
    crash that is not one of autocl's known refusals, e.g. a bug), the next trial would fail the
    same way, so a StudyError ends the search instead of "succeeding" with every trial failed."""

    def __init__(self, limit: int = 3) -> None:
        self.limit = limit
        self.last: tuple[str, str] | None = None
        self.trials: list[int] = []

    def succeeded(self) -> None:
        self.last, self.trials = None, []

    def failed(self, number: int, stage: str, message: str) -> None:
        if self.last != (stage, message):
            self.last, self.trials = (stage, message), []
        self.trials.append(number)
        if len(self.trials) >= self.limit:
            raise StudyError(
                f"search stopped: trials {', '.join(map(str, self.trials))} failed in a row with the same "
                f"internal error ({stage}): {message}. This is a bug, not a bad configuration; run with "
                "--verbose for the traceback (also stored as the trials' 'traceback')"
            )


def _pruning_record(cfg: CompressionConfig, kept: dict | None) -> dict:
    """The requested ratio beside what pruning achieved. A requested ratio that removed nothing
    (rounding kept every channel) is recorded as not applied, never as if it had been."""
    kept = kept or {"params": 1.0, "macs": 1.0}
    requested = cfg.prune.is_structured
    applied = bool(pruning_applied(cfg.to_dict(), kept.get("params", 1.0)))  # the record's one rule
    out = {
        "requested_ratio": cfg.prune.ratio,
        "requested_head_ratio": cfg.prune.head_ratio,
        "kept_params": kept.get("params"),
        "kept_macs": kept.get("macs"),
        "applied": applied,
    }
    if requested and not applied:
        out["note"] = (
            f"prune ratio {cfg.prune.ratio:g} removed nothing: with round_to {cfg.prune.round_to} "
            "every layer kept all its channels"
        )
    return out


def _enqueue_recipes(study: optuna.Study, space: SearchSpace, layers: list[str]) -> int:
    """A new study's first trials: the by-hand recipes (:func:`autocl.space.recipe_params`)."""
    recipes = recipe_params(space, layers)
    for params in recipes:
        study.enqueue_trial(params, user_attrs={"recipe": True}, skip_if_exists=True)
    return len(recipes)


@dataclass(frozen=True)
class SearchLimits:
    """How long a search runs and what it must keep: ``n_trials`` screened trials and/or ``timeout``
    seconds of wall clock (polishing included), and the largest metric drop a member may have
    (``max_drop``, in the metric's units: beyond it, a member is infeasible and off the front)."""

    n_trials: int | None = 12
    timeout: float | None = None
    max_drop: float | None = None


def _constraints(trial: optuna.trial.FrozenTrial) -> list[float]:
    return trial.user_attrs["constraints"]


def run_search(
    workload: Workload,
    space: SearchSpace,
    profile: HardwareProfile | Sequence[HardwareProfile],
    *,
    study_name: str,
    storage: str,
    n_trials: int | None = 12,
    seed: int = 0,
    reporter: Reporter | None = None,
    remeasure: bool = True,
    sensitivity: bool | None = None,
    timeout: float | None = None,
    max_drop: float | None = None,
    polish: bool = True,
    sampler: str | optuna.samplers.BaseSampler = "tpe",
    seeds: Sequence[Seed] = (),
    recipes: bool = True,
    sampler_seed: int | None = None,
    workload_spec: str | None = None,
    cache_max_bytes: int | None = None,
) -> SearchResult:
    """Run ``n_trials`` more screened trials and/or search for ``timeout`` seconds, whichever ends first.

    A new study starts with the by-hand recipes (uniform precision at several prune ratios). Every
    ``polish.every`` screened trials, and once at the end, the fastest pruned members near the
    front are polished.

    Args:
        workload: The workload to compress.
        space: The search space.
        profile: One hardware profile or several; the first is the primary (Optuna's latency objective).
        study_name: The study's name.
        storage: The study's database URL.
        n_trials: How many more screened trials to run (None: no trial budget). At least one of
            ``n_trials`` and ``timeout`` must be given.
        seed: Seeds the search (and the sampler unless ``sampler_seed`` is given).
        reporter: Receives the search's progress (default: a silent one).
        remeasure: Re-measure each profile's front at the end.
        sensitivity: Run the per-layer sensitivity pre-pass once per study (None: when it is cheap).
        timeout: How many seconds to search (None: no time budget).
        max_drop: Make members whose metric drop (:func:`autocl.evaluate.metric_drop`) exceeds it
            infeasible.
        polish: Run the long-distillation rounds of ``space.distill.polish``.
        sampler: ``tpe``, ``nsga2``, ``gp`` or ``random`` (seeded by autocl), or an Optuna sampler
            instance, used as built (see :func:`autocl.study.make_sampler`).
        seeds: Configurations enqueued first (a fork's, a warm start's).
        recipes: Enqueue the by-hand recipes first in a new study.
        sampler_seed: Seeds the sampler instead of ``seed`` (a worker's own, so workers do not sample
            alike).
        workload_spec: How the workload was named (a built-in, a registered name or
            ``module:function``): stored with the study, so export, remeasure, report and workers load
            it again without being told.
        cache_max_bytes: The artifact cache's budget (None: ``AUTOCL_CACHE_MAX``, else the default of
            :func:`autocl.compress.cache_max`): least recently used students and artifacts are evicted
            beyond it, never the front members' nor what a running or queued trial needs.

    Returns:
        The ``SearchResult``: the study, its storage, the primary profile, the fp32 baseline, the new
        trials' numbers, the profiles, the re-measurements and the time taken.

    Raises:
        ConfigError: Neither ``n_trials`` nor ``timeout`` is given.
        StudyError: The study was searched with another ``max_drop``, or it cannot be opened or resumed
            (e.g. its workload, space or profile contents changed).
    """
    if n_trials is None and timeout is None:
        raise ConfigError("give a trial budget (--trials) or a time budget (--timeout), or both")
    started = time.monotonic()
    limits = SearchLimits(n_trials=n_trials, timeout=timeout, max_drop=max_drop)
    reporter = reporter or SilentReporter()
    profiles = as_profiles(profile)
    space, narrowed = narrowing(space, profiles)
    space.check_against(workload.layer_names(), {n for n, _ in workload.model.named_modules()})
    check_depth(workload.model, workload.example_inputs(), space.prune.most_depth(), file=space.source)
    fingerprint = study_fingerprint(workload.name, workload.key, space, profiles, teacher=teacher_record(workload))
    study = open_study(study_name, storage, fingerprint, higher_is_better=workload.higher_is_better)
    stored_drop = study.user_attrs.get("max_drop", "unset")
    if stored_drop != "unset" and stored_drop != max_drop and any(t.state.is_finished() for t in study.trials):
        raise StudyError(
            f"study {study_name!r} was searched with --max-drop {stored_drop}, not {max_drop}: its trials' "
            "feasibility was decided with that bound; resume with the same --max-drop, or start a new study"
        )
    study.set_user_attr("max_drop", max_drop)
    record_narrowing(study, narrowed, reporter)  # one line, and the study's "narrowed" attribute
    is_new = len(study.trials) == 0
    if is_new:
        study.set_user_attr(
            "workload",
            {
                "name": workload.name,
                "metric": workload.metric_name,
                "higher_is_better": workload.higher_is_better,
                "layers": workload.layer_names(),
            },
        )
        study.set_user_attr("space", space.model_dump(mode="json"))
        study.set_user_attr("profile", profiles[0].model_dump(mode="json"))
    if workload_spec and (study.user_attrs.get("workload") or {}).get("spec") != workload_spec:
        study.set_user_attr("workload", {**(study.user_attrs.get("workload") or {}), "spec": workload_spec})
    study.set_user_attr("profiles", {p.name: p.model_dump(mode="json") for p in profiles})
    if "metric_profile" not in study.user_attrs:  # the runtime whose outputs the metric is computed from
        study.set_user_attr("metric_profile", _eval_profile(profiles).model_dump(mode="json"))
    names = constraint_names(profiles) + (["metric:max_drop"] if max_drop is not None else [])
    study.set_user_attr("constraint_names", names)
    root = cache_dir()
    limit = cache_max_bytes if cache_max_bytes is not None else cache_max(None, root)

    def protected():  # asked only when the cache is over budget
        mine = study_cache_use(study, storage, root)
        return keep_predicate([mine, *home_cache_uses(root, skip=[storage])])

    cache_budget = CacheBudget(limit, protected)
    compressor = Compressor(workload, root, seed=seed, budget=cache_budget)
    reporter.stage(-1, "measuring the fp32 baseline")
    baseline = _baseline(study, compressor, workload, profiles)
    cache_budget.enforce(root)  # a resumed search may start over budget
    # refuse precisions no target's provider runs; per-layer sensitivity pre-pass (ranks fallbacks)
    space = prepare_space(
        study,
        space,
        compressor,
        profiles[0],
        others=profiles[1:],
        sensitivity=sensitivity,
        progress=lambda s: reporter.stage(-1, s),
    )
    enqueue_seeds(study, seeds)  # a fork's or a warm start's configurations first, then the recipes
    # several workers may open a new study at once: one of them enqueues the recipes (_claims)
    enqueued = (
        _enqueue_recipes(study, space, compressor.layers)
        if is_new and recipes and claim(storage, study, "recipes")
        else 0
    )
    budget = n_trials if n_trials is not None else 10**9
    # a resumed study gets a fresh seed stream, so its random start-up trials are not repeats;
    # constraints_func is what stores system_attrs['constraints']; the recipes come before start-up
    sampler_seed = seed if sampler_seed is None else sampler_seed
    study.sampler = make_sampler(
        sampler,
        sampler_seed + len(study.trials),
        min(budget, 1000),
        _constraints if names else None,
        startup_extra=enqueued + len(seeds),
    )
    run = TrialRun()

    def write_fronts(st: optuna.Study) -> None:
        for p in profiles:
            write_front(storage, st, p.name, workload.metric_name)

    finished = [0]  # this process's finished trials (another worker's do not count against our budget)

    ladder = space.distill.fidelity

    def after_trial(st: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        finished[0] += 1
        release_memory()  # the trial's student, sessions and batches are unreferenced by now
        write_fronts(st)
        if ladder is not None:  # asynchronous successive halving: promote as soon as a rung allows
            chosen = promotions(st, eta=ladder.eta, rungs=len(ladder.rungs), higher_is_better=workload.higher_is_better)
            if chosen and enqueue_promotions(st, chosen, storage):
                reporter.stage(-1, f"promoting trial(s) {', '.join(str(t.number) for t in chosen)} up the ladder")
        reporter.trial_finished(trial)

    objective = run.wrap(_objective(compressor, space, profiles, reporter, limits, baseline, latency_objective(study)))
    pol = space.distill.polish
    # the ladder's last rung is the long distillation: it replaces polishing
    polishing = polish and ladder is None and pol.members > 0 and pol.epochs > 0
    deadline = started + timeout if timeout is not None else None
    # leave the last 15% of a time budget to the final polishing round
    screen_deadline = started + 0.85 * timeout if timeout is not None and polishing else deadline

    def left(until: float) -> float:
        return until - time.monotonic()

    def run_trials(n: int, until: float | None) -> int:
        if n <= 0 or (until is not None and left(until) <= 0):
            return 0
        ran = finished[0]
        with quiet_optuna_failures():  # autocl prints its own line per failed trial
            try:
                study.optimize(
                    objective,
                    n_trials=n,
                    timeout=None if until is None else left(until),
                    catch=(TrialError,),
                    callbacks=[after_trial],
                )
            except Exception as exc:  # a full disk under the database: one line, not Optuna's assertion
                stop = storage_failure(exc, sqlite_file(storage) or root)
                if stop is None:
                    raise
                raise stop from None
        return finished[0] - ran

    def polish_round() -> int:
        chosen = polish_candidates(
            study,
            profile=profiles[0].name,
            baseline=baseline["metric"],
            higher_is_better=workload.higher_is_better,
            window=pol.window,
            members=pol.members,
        )
        if not chosen:
            return 0
        reporter.stage(-1, f"polishing trial(s) {', '.join(str(t.number) for t in chosen)}")
        if not enqueue_polish(study, chosen, storage):
            return 0
        of = {t.number for t in chosen}
        twins = [t for t in study.get_trials(deepcopy=False, states=(WAITING,)) if t.user_attrs.get("polish_of") in of]
        return sum(run_twin(t._trial_id) for t in twins)

    def run_twin(trial_id: int) -> int:
        """Run this waiting twin, and nothing else: Optuna would pop the oldest waiting trial (a
        recipe beyond the budget, a retry), so the twin is taken first and handed to ``ask``."""
        if deadline is not None and left(deadline) <= 0:
            return 0
        try:
            if not study._storage.set_trial_state_values(trial_id, state=RUNNING):
                return 0  # another worker runs it
        except UpdateFinishedTrialError:
            return 0
        study._pop_waiting_trial_id = lambda: trial_id  # type: ignore[method-assign]
        try:
            return run_trials(1, None)
        finally:
            del study._pop_waiting_trial_id

    screened = 0
    while screened < budget and (screen_deadline is None or left(screen_deadline) > 0):
        chunk = min(budget - screened, pol.every if polishing else budget - screened)
        ran = run_trials(chunk, screen_deadline)
        if ran == 0:
            break
        screened += ran
        if polishing:
            polish_round()
    # what is left of a time budget goes on polishing the next members near the front
    while polishing and deadline is not None and left(deadline) > 0 and polish_round() > 0:
        pass
    write_fronts(study)
    remeasured = {}
    if remeasure:
        reporter.stage(-1, "re-measuring the Pareto fronts")
        remeasured = remeasure_front(study, storage, workload, profiles, compressor=compressor)
    new = sorted(run.numbers)  # this process's trials, not another worker's
    return SearchResult(
        study=study,
        storage=storage,
        profile=profiles[0],
        baseline=baseline,
        new_trials=new,
        profiles=profiles,
        remeasured=remeasured,
        limits=limits,
        seconds=round(time.monotonic() - started, 1),
    )
