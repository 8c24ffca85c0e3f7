"""The front and the trials of a study as pandas DataFrames (what ``load_study(...).front()`` returns)."""

from __future__ import annotations

import pandas as pd

from autocl.report._trials import StudyData, TrialInfo

FRONT_COLUMNS = (
    "trial", "prune_ratio", "temperature", "alpha", "bits", "metric", "metric_drop", "latency_ms",
    "latency_iqr_ms", "latency_p90_ms", "speedup", "size_kb", "artifact_sha256",
)


def _row(data: StudyData, t: TrialInfo) -> dict:
    row = {
        "trial": t.number, "prune_ratio": t.prune_ratio, "temperature": t.temperature, "alpha": t.alpha,
        "bits": t.bits, "metric": t.metric, "metric_drop": data.metric_drop(t), "latency_ms": t.latency_ms,
        "latency_iqr_ms": t.latency_iqr_ms, "latency_p90_ms": t.latency_p90_ms, "speedup": data.speedup(t),
        "size_kb": t.size_kb, "artifact_sha256": t.artifact_sha256,
    }
    if t.not_faster is not None:
        row["not_faster"] = t.not_faster
    for key, value in (t.memory or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            row[f"memory_{key}"] = value
    return row


def _frame(data: StudyData, rows: list[dict], columns: tuple[str, ...]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=list(columns))
    df.attrs.update(study=data.study_name, profile=data.profile, metric_name=data.metric_name,
                    higher_is_better=data.higher_is_better, baseline=data.baseline, layers=list(data.layers))
    return df


def front_frame(data: StudyData) -> pd.DataFrame:
    """The feasible front on ``data.profile``, fastest first: one row per member.

    ``metric_drop`` is how much worse than the fp32 teacher the metric is (positive = worse),
    ``speedup`` the teacher's median latency over the member's. Optional columns ``not_faster`` and
    ``memory_*`` appear when the search recorded them. ``df.attrs`` holds the study, profile,
    metric name and baseline. Empty (with the columns) when the study has no front yet.
    """
    return _frame(data, [_row(data, t) for t in data.front], FRONT_COLUMNS)


def trials_frame(data: StudyData) -> pd.DataFrame:
    """Every trial with its status on ``data.profile`` (front, dominated, infeasible, unmeasured,
    failed, pending) and the reason for anything not on the front."""
    rows = []
    for t in data.trials:
        row = _row(data, t)
        row.update(status=t.status, reason=t.reason, constraints=dict(t.constraints) or None)
        rows.append(row)
    return _frame(data, rows, ("trial", "status", "reason", *FRONT_COLUMNS[1:]))


__all__ = ["FRONT_COLUMNS", "front_frame", "trials_frame"]
