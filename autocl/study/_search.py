"""Run a search: each trial compresses, evaluates on the artifact and measures latency.

Trials run through ``study.optimize`` (so Optuna's heartbeats apply). A trial that fails becomes
a FAIL trial with its error stored in ``user_attrs['error']``; the study and all measured trials
survive. Every artifact is measured on each profile (the first is the primary: its latency is the
objective); after every trial each profile's Pareto front is written to autocl's own table, and at
the end the fronts are re-measured.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import optuna

from autocl.compress import Compressor
from autocl.errors import AutoclError, TrialError
from autocl.evaluate import evaluate_artifact
from autocl.hardware import HardwareProfile
from autocl.runtime import cache_dir
from autocl.space import SearchSpace
from autocl.study._fingerprint import study_fingerprint
from autocl.study._front import write_front
from autocl.study._remeasure import remeasure_front
from autocl.study._samplers import make_sampler
from autocl.study._seeds import Seed, enqueue_seeds
from autocl.study._sensitivity import prepare_space
from autocl.study._study import open_study
from autocl.study._targets import (
    as_profiles, constraint_names, constraint_values, measure_baselines, measure_targets, narrow_space,
)
from autocl.study._teacher import teacher_record
from autocl.study._trial_run import TrialRun
from autocl.workloads import Workload


class Reporter(Protocol):
    def trial_started(self, number: int) -> None: ...
    def stage(self, number: int, stage: str) -> None: ...
    def trial_finished(self, trial: optuna.trial.FrozenTrial) -> None: ...


class SilentReporter:
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


def _eval_profile(profiles: list[HardwareProfile]) -> HardwareProfile:
    """The profile whose session computes the metric: the first local one, else plain CPU."""
    for p in profiles:
        if p.measure == "local" and p.unavailable_reason() is None:
            return p
    return HardwareProfile(name="cpu-eval")


def _baseline(study: optuna.Study, compressor: Compressor, workload: Workload,
              profiles: list[HardwareProfile]) -> dict:
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
        stored[name] = {"metric": metric, "latency_ms": m.median_ms, "latency_iqr_ms": m.iqr_ms,
                        "size_kb": path.stat().st_size / 1024, "path": str(path), "measurement": m.to_dict()}
    base = {k: v for k, v in stored[profiles[0].name].items() if k != "measurement"}
    study.set_user_attr("baselines", stored)
    study.set_user_attr("baseline", base)
    return base


def _objective(compressor: Compressor, space: SearchSpace, profiles: list[HardwareProfile], reporter: Reporter):
    workload = compressor.workload
    primary, eval_profile = profiles[0], _eval_profile(profiles)

    def objective(trial: optuna.Trial) -> tuple[float, float, float]:
        reporter.trial_started(trial.number)
        stage = "sampling"

        def on_stage(name: str) -> None:
            nonlocal stage
            stage = name
            reporter.stage(trial.number, name)

        try:
            cfg = space.suggest(trial, compressor.layers)
            trial.set_user_attr("config", cfg.to_dict())
            trial.set_user_attr("bits", cfg.quant.compact(compressor.layers))
            t0 = time.perf_counter()
            artifact = compressor.artifact(cfg, on_stage)
            t_compress = time.perf_counter() - t0
            on_stage("evaluating")
            t1 = time.perf_counter()
            metric = evaluate_artifact(artifact.path, workload, eval_profile)
            if math.isnan(metric):
                raise TrialError(f"the {workload.metric_name} is NaN on the validation split: the artifact gives "
                                 "non-finite outputs (try fewer int8 layers or a lower distill.lr)",
                                 trial=trial.number, stage="evaluating")
            on_stage("measuring")
            t2 = time.perf_counter()
            compressed = cfg.prune.ratio > 0 or bool(artifact.int8_layers)
            results = measure_targets(artifact.path, compressor.baseline(), profiles, workload, compressed=compressed)
            m = results[primary.name].measurement
            trial.set_user_attr("student_key", artifact.student.key)
            trial.set_user_attr("student_reused", artifact.student.reused)
            trial.set_user_attr("parameters", artifact.student.parameters)
            trial.set_user_attr("artifact_sha256", artifact.sha256)
            trial.set_user_attr("size_bytes", artifact.size_bytes)
            trial.set_user_attr("int8_layers", list(artifact.int8_layers))
            trial.set_user_attr("artifact_path", str(artifact.path))
            trial.set_user_attr("measurements", {n: r.measurement.to_dict() for n, r in results.items()})
            trial.set_user_attr("baseline_measurements", {n: r.baseline.to_dict() for n, r in results.items()})
            trial.set_user_attr("speedup", {n: round(r.speedup, 4) for n, r in results.items()})
            trial.set_user_attr("not_faster", {n: r.not_faster for n, r in results.items() if r.not_faster is not None})
            trial.set_user_attr("memory", {n: r.measurement.memory for n, r in results.items() if r.measurement.memory})
            if any(p.budgets.items() for p in profiles):
                trial.set_user_attr("constraints", constraint_values(profiles, results, artifact.size_bytes))
            trial.set_user_attr("seconds", {"compress": round(t_compress, 3), "evaluate": round(t2 - t1, 3),
                                            "measure": round(time.perf_counter() - t2, 3)})
            trial.set_user_attr("compression", artifact.details())  # precisions, sparsity, deflated size
            return metric, m.median_ms, artifact.size_bytes / 1024
        except AutoclError as exc:
            error = exc if isinstance(exc, TrialError) else TrialError(str(exc), trial=trial.number, stage=stage)
        except Exception as exc:  # any crash inside one trial fails that trial, not the study
            error = TrialError(f"{type(exc).__name__}: {exc}", trial=trial.number, stage=stage)
        trial.set_user_attr("error", str(error))
        raise error

    return objective


def _enqueue_reference(study: optuna.Study, space: SearchSpace, layers: list[str]) -> None:
    """First trial of a new study: every searchable layer int8, no pruning; the whole-model PTQ a
    user would try by hand, so the front always shows whether the search beat it."""
    choices = space.layer_choices(layers)
    params = {f"bits.{n}": "int8" for n, c in choices.items() if len(c) > 1 and "int8" in c}
    ratio = space.prune.ratio
    low = getattr(ratio, "low", None)
    if low == 0.0 or ratio == 0.0 or (isinstance(ratio, list) and 0.0 in ratio):
        params["prune.ratio"] = 0.0
    if params:
        study.enqueue_trial(params, skip_if_exists=True)


def _constraints(trial: optuna.trial.FrozenTrial) -> list[float]:
    return trial.user_attrs["constraints"]


def run_search(workload: Workload, space: SearchSpace, profile: HardwareProfile | Sequence[HardwareProfile], *,
               study_name: str, storage: str, n_trials: int, seed: int = 0, reporter: Reporter | None = None,
               remeasure: bool = True, sensitivity: bool = False, sampler: str = "tpe",
               seeds: Sequence[Seed] = ()) -> SearchResult:
    """Run ``n_trials`` more trials. ``profile`` is one profile or several (the first is the primary);
    ``remeasure`` re-measures each profile's front at the end; ``sensitivity`` runs the per-layer
    sensitivity pre-pass once per study and drops hopeless precision choices. ``sampler`` is tpe, nsga2,
    gp or random; ``seeds`` are configurations enqueued first (a fork's, a warm start's)."""
    reporter = reporter or SilentReporter()
    profiles = as_profiles(profile)
    space = narrow_space(space, profiles)
    space.check_against(workload.layer_names(), {n for n, _ in workload.model.named_modules()})
    fingerprint = study_fingerprint(workload.name, workload.key, space, profiles, teacher=teacher_record(workload))
    study = open_study(study_name, storage, fingerprint, higher_is_better=workload.higher_is_better)
    is_new = len(study.trials) == 0
    if is_new:
        study.set_user_attr("workload", {"name": workload.name, "metric": workload.metric_name,
                                         "higher_is_better": workload.higher_is_better,
                                         "layers": workload.layer_names()})
        study.set_user_attr("space", space.model_dump(mode="json"))
        study.set_user_attr("profile", profiles[0].model_dump(mode="json"))
    study.set_user_attr("profiles", {p.name: p.model_dump(mode="json") for p in profiles})
    names = constraint_names(profiles)
    study.set_user_attr("constraint_names", names)
    compressor = Compressor(workload, cache_dir(), seed=seed)
    reporter.stage(-1, "measuring the fp32 baseline")
    baseline = _baseline(study, compressor, workload, profiles)
    # refuse precisions the primary provider cannot run; optional per-layer sensitivity pre-pass
    space = prepare_space(study, space, compressor, profiles[0], sensitivity=sensitivity,
                          progress=lambda s: reporter.stage(-1, s))
    # a resumed study gets a fresh seed stream, so its random start-up trials are not repeats
    # constraints_func is what stores system_attrs['constraints']
    study.sampler = make_sampler(sampler, seed + len(study.trials), n_trials, _constraints if names else None)
    if is_new:
        _enqueue_reference(study, space, compressor.layers)
    enqueue_seeds(study, seeds)
    run = TrialRun()

    def write_fronts(st: optuna.Study) -> None:
        for p in profiles:
            write_front(storage, st, p.name, workload.metric_name)

    def after_trial(st: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        write_fronts(st)
        reporter.trial_finished(trial)

    study.optimize(run.wrap(_objective(compressor, space, profiles, reporter)), n_trials=n_trials,
                   catch=(TrialError,), callbacks=[after_trial])
    write_fronts(study)
    remeasured = {}
    if remeasure:
        reporter.stage(-1, "re-measuring the Pareto fronts")
        remeasured = remeasure_front(study, storage, workload, profiles, compressor=compressor)
    new = sorted(run.numbers)  # this process's trials, not another worker's
    return SearchResult(study=study, storage=storage, profile=profiles[0], baseline=baseline, new_trials=new,
                        profiles=profiles, remeasured=remeasured)
