"""Run a search: each trial compresses, evaluates on the artifact and measures latency.

Trials run through ``study.optimize`` (so Optuna's heartbeats apply). A trial that fails becomes
a FAIL trial with its error stored in ``user_attrs['error']``; the study and all measured trials
survive. After every trial the Pareto front is written to autocl's own table.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Protocol

import optuna

import autocl
from autocl.compress import Compressor
from autocl.errors import AutoclError, TrialError
from autocl.evaluate import evaluate_artifact
from autocl.hardware import HardwareProfile, measure_latency
from autocl.runtime import cache_dir
from autocl.space import SearchSpace
from autocl.study._front import write_front
from autocl.study._sensitivity import prepare_space
from autocl.study._study import open_study
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


def _baseline(study: optuna.Study, compressor: Compressor, workload: Workload, profile: HardwareProfile) -> dict:
    """The unpruned fp32 teacher, evaluated and measured once per study: the reference point."""
    if "baseline" in study.user_attrs:
        return study.user_attrs["baseline"]
    path = compressor.baseline()
    m = measure_latency(path, profile, workload.sample_feed(profile.batch_size))
    base = {"metric": evaluate_artifact(path, workload, profile), "latency_ms": m.median_ms,
            "latency_iqr_ms": m.iqr_ms, "size_kb": path.stat().st_size / 1024}
    study.set_user_attr("baseline", base)
    return base


def _objective(compressor: Compressor, space: SearchSpace, profile: HardwareProfile, reporter: Reporter):
    workload = compressor.workload

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
            metric = evaluate_artifact(artifact.path, workload, profile)
            if math.isnan(metric):
                raise TrialError(f"the {workload.metric_name} is NaN on the validation split: the artifact gives "
                                 "non-finite outputs (try fewer int8 layers or a lower distill.lr)",
                                 trial=trial.number, stage="evaluating")
            on_stage("measuring")
            t1 = time.perf_counter()
            m = measure_latency(artifact.path, profile, workload.sample_feed(profile.batch_size))
            trial.set_user_attr("student_key", artifact.student.key)
            trial.set_user_attr("student_reused", artifact.student.reused)
            trial.set_user_attr("parameters", artifact.student.parameters)
            trial.set_user_attr("artifact_sha256", artifact.sha256)
            trial.set_user_attr("size_bytes", artifact.size_bytes)
            trial.set_user_attr("int8_layers", list(artifact.int8_layers))
            trial.set_user_attr("compression", artifact.details())  # precisions, sparsity, deflated size
            trial.set_user_attr("measurements", {profile.name: m.to_dict()})
            trial.set_user_attr("seconds", {"compress": round(t_compress, 3),
                                            "measure": round(time.perf_counter() - t1, 3)})
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


def run_search(workload: Workload, space: SearchSpace, profile: HardwareProfile, *, study_name: str, storage: str,
               n_trials: int, seed: int = 0, reporter: Reporter | None = None, sensitivity: bool = False) -> SearchResult:
    reporter = reporter or SilentReporter()
    space.check_against(workload.layer_names(), {n for n, _ in workload.model.named_modules()})
    fingerprint = {"workload": workload.name, "workload_key": workload.key, "space": space.fingerprint,
                   "profile": profile.name, "autocl": autocl.__version__}
    study = open_study(study_name, storage, fingerprint, higher_is_better=workload.higher_is_better)
    is_new = len(study.trials) == 0
    if is_new:
        study.set_user_attr("workload", {"name": workload.name, "metric": workload.metric_name,
                                         "higher_is_better": workload.higher_is_better,
                                         "layers": workload.layer_names()})
        study.set_user_attr("space", space.model_dump(mode="json"))
        study.set_user_attr("profile", profile.model_dump(mode="json"))
    compressor = Compressor(workload, cache_dir(), seed=seed)
    reporter.stage(-1, "measuring the fp32 baseline")
    baseline = _baseline(study, compressor, workload, profile)
    # refuse precisions the provider cannot run; optional per-layer sensitivity pre-pass (study/_sensitivity.py)
    space = prepare_space(study, space, compressor, profile, sensitivity=sensitivity,
                          progress=lambda s: reporter.stage(-1, s))
    # a resumed study gets a fresh seed stream, so its random start-up trials are not repeats
    study.sampler = optuna.samplers.TPESampler(seed=seed + len(study.trials), multivariate=True,
                                               n_startup_trials=min(10, max(4, n_trials // 2)))
    before = {t.number for t in study.trials}
    if is_new:
        _enqueue_reference(study, space, compressor.layers)

    def after_trial(st: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        write_front(storage, st, profile.name, workload.metric_name)
        reporter.trial_finished(trial)

    study.optimize(_objective(compressor, space, profile, reporter), n_trials=n_trials,
                   catch=(TrialError,), callbacks=[after_trial])
    write_front(storage, study, profile.name, workload.metric_name)
    new = sorted(t.number for t in study.trials if t.number not in before)
    return SearchResult(study=study, storage=storage, profile=profile, baseline=baseline, new_trials=new)
