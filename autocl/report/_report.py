"""Everything the HTML report shows, gathered as plain data (study results; no plotting here:
``_figures`` and ``_html`` draw it)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import optuna

import autocl
from autocl.report._layers import (
    Explanation, LayerMap, bits_map, cached_artifact, explain_layers, pruning_map,
)
from autocl.report._progress import History, Importance, history, param_importances
from autocl.report._trials import StudyData, require_front, study_data


@dataclass(frozen=True)
class ReportData:
    """The report's content: a study on one profile, its per-layer maps and its search history.

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


def _versions() -> dict:
    import onnxruntime
    import plotly

    return {"autocl": autocl.__version__, "optuna": optuna.__version__, "onnxruntime": onnxruntime.__version__,
            "plotly": plotly.__version__}


def _measure_shares(data: StudyData, cache_root: Path, workload) -> tuple[dict[int, dict[str, float]], str]:
    from autocl.hardware import profile_from_dict
    from autocl.report._layer_time import layer_latency_shares

    if not data.profile_settings:
        return {}, f"the study does not store the settings of profile {data.profile!r}, so layers were not timed"
    profile = profile_from_dict(data.profile_settings, source=f"study {data.study_name!r}: profile")
    feed = workload.sample_feed(profile.batch_size)
    shares, missing = {}, []
    for t in data.front:
        path = cached_artifact(data, cache_root, t)
        if path is None:
            missing.append(t.number)
            continue
        shares[t.number] = layer_latency_shares(path, profile, feed, data.layers)
    note = (f"artifacts of trial(s) {', '.join(map(str, missing))} are not in the cache; not timed" if missing else "")
    return shares, note


def build_report(study: optuna.Study, profile: str | None = None, *, storage: str = "",
                 cache_root: Path | None = None, workload=None, measure_layers: bool = False) -> ReportData:
    """Gather the report of ``study`` on ``profile``. Raises StudyError when there is no feasible
    front (an empty, failed-only or infeasible-only study), saying why.

    ``measure_layers`` times each front member's layers with onnxruntime's profiler on the profile
    (needs ``workload`` for real inputs, and the artifacts in ``cache_root``)."""
    if cache_root is None:
        from autocl.runtime import cache_dir

        cache_root = cache_dir()
    data = study_data(study, profile)
    require_front(data)
    pruning = pruning_map(data, cache_root)
    shares: dict[int, dict[str, float]] = {}
    note = "not measured (run 'autocl report --layer-latency' to time each front member's layers)"
    if measure_layers and workload is not None:
        shares, note = _measure_shares(data, cache_root, workload)
    return ReportData(
        data=data, n_objectives=len(study.directions), bits=bits_map(data), pruning=pruning,
        explanations=explain_layers(data, pruning, shares), importance=param_importances(study, data),
        history=history(data), storage=storage, shares=shares, shares_note=note,
        generated_at=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), versions=_versions(),
    )


__all__ = ["ReportData", "build_report"]
