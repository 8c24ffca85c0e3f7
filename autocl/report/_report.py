"""Everything the HTML report shows, gathered as plain data (study results; no plotting here:
``_figures`` and ``_html`` draw it)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import optuna

import autocl
from autocl.report._layers import Explanation, LayerMap, bits_map, explain_layers, pruning_map
from autocl.report._progress import History, Importance, history, param_importances
from autocl.report._trials import LearningCurve, StudyData, learning_curves, require_front, study_data


@dataclass(frozen=True)
class ReportData:
    """The report's content: a study on one profile, its per-layer maps, its search history and the
    learning curves of its fidelity ladder (``curves``, empty without one).

    ``shares[trial][layer]`` is the layer's share of that member's latency where it was measured
    (``measure_layers=True``); ``shares_note`` says why it was not."""

    data: StudyData
    n_objectives: int
    bits: LayerMap
    pruning: LayerMap
    explanations: list[Explanation]
    importance: Importance
    history: History
    storage: str = ""
    shares: dict[int, dict[str, float]] = field(default_factory=dict)
    shares_note: str = ""
    generated_at: str = ""
    versions: dict = field(default_factory=dict)
    curves: list[LearningCurve] = field(default_factory=list)


def _versions() -> dict:
    import onnxruntime
    import plotly

    return {
        "autocl": autocl.__version__,
        "optuna": optuna.__version__,
        "onnxruntime": onnxruntime.__version__,
        "plotly": plotly.__version__,
    }


def build_report(
    study: optuna.Study,
    profile: str | None = None,
    *,
    storage: str = "",
    cache_root: Path | None = None,
    shares: dict[int, dict[str, float]] | None = None,
    shares_note: str = "",
) -> ReportData:
    """Gather the report of ``study`` on ``profile``.

    The report measures nothing: layer latency shares are measured by the caller
    (``autocl.layer_latency.measure_layer_shares``) and only shown here.

    Args:
        study: The study.
        profile: The hardware profile (default: the search's primary profile).
        storage: The study's database URL, shown in the report.
        cache_root: The artifact cache, read for the pruning map (default: ``<AUTOCL_HOME>/cache``).
        shares: ``shares[trial][layer]``: each front member's layers' shares of its latency (None: not
            measured).
        shares_note: Why some shares are missing.

    Returns:
        The ``ReportData`` that :func:`autocl.report.render_html` renders.

    Raises:
        StudyError: There is no feasible front (an empty, failed-only or infeasible-only study), saying
            why, or the study has no measurement on ``profile``.
    """
    if cache_root is None:
        from autocl.runtime import cache_dir

        cache_root = cache_dir()
    data = study_data(study, profile)
    require_front(data)
    pruning = pruning_map(data, cache_root)
    note = shares_note
    if shares is None:
        shares, note = {}, "not measured (run 'autocl report --layer-latency' to time each front member's layers)"
    return ReportData(
        data=data,
        n_objectives=len(study.directions),
        bits=bits_map(data),
        pruning=pruning,
        explanations=explain_layers(data, pruning, shares),
        importance=param_importances(study, data),
        history=history(data),
        storage=storage,
        shares=shares,
        shares_note=note,
        generated_at=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        versions=_versions(),
        curves=learning_curves(data),
    )


__all__ = ["ReportData", "build_report"]
