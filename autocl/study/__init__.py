"""Studies: create/resume on RDB storage, run trials, keep the Pareto front in autocl's table."""

from autocl.study._front import FrontRow, compute_front, read_front, row_from_trial, write_front
from autocl.study._search import Reporter, SearchResult, SilentReporter, run_search
from autocl.study._study import OBJECTIVES, default_storage, load_existing, make_storage, open_study

__all__ = [
    "OBJECTIVES", "FrontRow", "Reporter", "SearchResult", "SilentReporter", "compute_front", "default_storage",
    "load_existing", "make_storage", "open_study", "read_front", "row_from_trial", "run_search", "write_front",
]
