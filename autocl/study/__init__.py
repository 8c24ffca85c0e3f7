"""Studies: create/resume on RDB storage, run trials, keep the Pareto front in autocl's table."""

from autocl.study._front import (
    FrontRow, annotate_front, compute_front, is_feasible, read_front, row_from_trial, stored_profiles, write_front,
)
from autocl.study._remeasure import remeasure_front
from autocl.study._search import Reporter, SearchResult, SilentReporter, run_search
from autocl.study._study import OBJECTIVES, default_storage, load_existing, make_storage, open_study
from autocl.study._targets import as_profiles, narrow_space

__all__ = [
    "OBJECTIVES", "FrontRow", "Reporter", "SearchResult", "SilentReporter", "annotate_front", "as_profiles",
    "compute_front", "default_storage", "is_feasible", "load_existing", "make_storage", "narrow_space",
    "open_study", "read_front", "remeasure_front", "row_from_trial", "run_search", "stored_profiles", "write_front",
]
