"""Studies: create/resume on RDB storage, run trials, keep the Pareto front in autocl's table."""

from autocl.study._baselines import measured_profiles, metric_profile, primary_profile, study_baseline
from autocl.study._cache_use import StudyCacheUse, home_cache_uses, keep_predicate, study_cache_use
from autocl.study._cross_target import CrossTargets, Winner, cross_targets
from autocl.study._disk import ADVICE, disk_full
from autocl.study._fingerprint import check_study_name, fingerprint_changes, study_fingerprint
from autocl.study._front import front_numbers, front_records, read_front, stored_profiles, write_front
from autocl.study._record import (
    ROW_KEYS,
    TrialRecord,
    dominates,
    is_compressed,
    is_distilled,
    latency_objective,
    losses,
    metric_change,
    normalized_ms,
    not_faster,
    pareto_members,
    pruning_applied,
    read_trial,
    read_trials,
    speedup,
    trial_summary,
)
from autocl.study._remeasure import remeasure_front
from autocl.study._samplers import SAMPLERS, make_sampler
from autocl.study._search import Reporter, SearchResult, SilentReporter, run_search
from autocl.study._seeds import RunPlan, Seed, prepare_run
from autocl.study._study import (
    OBJECTIVES,
    default_storage,
    existing_storage,
    load_existing,
    make_storage,
    open_study,
    sqlite_file,
    workload_spec,
)
from autocl.study._targets import Narrowing, as_profiles, narrow_space, narrowing
from autocl.study._teacher import restore_teacher
from autocl.study._trial_run import Interrupted, sigterm_as_interrupt

__all__ = [
    "ADVICE",
    "OBJECTIVES",
    "ROW_KEYS",
    "SAMPLERS",
    "CrossTargets",
    "Interrupted",
    "Narrowing",
    "Reporter",
    "RunPlan",
    "SearchResult",
    "Seed",
    "SilentReporter",
    "StudyCacheUse",
    "TrialRecord",
    "Winner",
    "as_profiles",
    "check_study_name",
    "cross_targets",
    "default_storage",
    "disk_full",
    "dominates",
    "existing_storage",
    "fingerprint_changes",
    "front_numbers",
    "front_records",
    "home_cache_uses",
    "is_compressed",
    "is_distilled",
    "keep_predicate",
    "latency_objective",
    "load_existing",
    "losses",
    "make_sampler",
    "make_storage",
    "measured_profiles",
    "metric_change",
    "metric_profile",
    "narrow_space",
    "narrowing",
    "normalized_ms",
    "not_faster",
    "open_study",
    "pareto_members",
    "prepare_run",
    "primary_profile",
    "pruning_applied",
    "read_front",
    "read_trial",
    "read_trials",
    "remeasure_front",
    "restore_teacher",
    "run_search",
    "sigterm_as_interrupt",
    "speedup",
    "sqlite_file",
    "stored_profiles",
    "study_baseline",
    "study_cache_use",
    "study_fingerprint",
    "trial_summary",
    "workload_spec",
    "write_front",
]
