"""Inspecting a study, in two halves; nothing here writes to the study.

* Study results, plain data read from the study record (:mod:`autocl.study._record`): trials
  classified and the front (``_trials``), DataFrames (``_frames``), picks (``_pick``), per-layer
  maps (``_layers``), importance and history (``_progress``), all of it gathered (``_report``).
* Rendering, which only draws that data: plotly figures (``_figures``), the HTML page
  (``_html``) and the model card's Markdown (``_card``). Imports flow from rendering to results,
  never back.
"""

from autocl.report._card import layer_rows, model_card
from autocl.report._figures import pareto_3d, pareto_figure
from autocl.report._frames import FRONT_COLUMNS, front_frame, trials_frame
from autocl.report._html import report_figures, write_report
from autocl.report._layers import (
    Explanation,
    LayerMap,
    LayerNote,
    bits_map,
    cache_layout,
    cached_artifact,
    explain_layers,
    layer_precisions,
    precision_of,
    pruning_map,
)
from autocl.report._pick import FIELDS as PICK_FIELDS
from autocl.report._pick import Pick, knee, parse_conditions, pick
from autocl.report._progress import History, Importance, history, param_importances
from autocl.report._report import ReportData, build_report
from autocl.report._trials import (
    DOMINATED,
    FAILED,
    FRONT,
    INFEASIBLE,
    PENDING,
    STATUSES,
    UNMEASURED,
    StudyData,
    TrialInfo,
    dominates,
    measured_profiles,
    primary_profile,
    require_front,
    study_data,
)

__all__ = [
    "DOMINATED",
    "FAILED",
    "FRONT",
    "FRONT_COLUMNS",
    "INFEASIBLE",
    "PENDING",
    "PICK_FIELDS",
    "STATUSES",
    "UNMEASURED",
    "Explanation",
    "History",
    "Importance",
    "LayerMap",
    "LayerNote",
    "Pick",
    "ReportData",
    "StudyData",
    "TrialInfo",
    "bits_map",
    "build_report",
    "cache_layout",
    "cached_artifact",
    "dominates",
    "explain_layers",
    "front_frame",
    "history",
    "knee",
    "layer_precisions",
    "layer_rows",
    "measured_profiles",
    "model_card",
    "param_importances",
    "pareto_3d",
    "pareto_figure",
    "parse_conditions",
    "pick",
    "precision_of",
    "primary_profile",
    "pruning_map",
    "report_figures",
    "require_front",
    "study_data",
    "trials_frame",
    "write_report",
]
