"""The front and the trials of a study as pandas DataFrames (what ``load_study(...).front()`` returns).

One row per trial is :meth:`autocl.study._record.TrialRecord.to_row`, the same dict ``autocl front
--format json`` prints and the HTTP API serves, so the three agree key for key and number for number.
"""

from __future__ import annotations

import pandas as pd

from autocl.report._trials import StudyData
from autocl.study._record import ROW_KEYS

FRONT_COLUMNS = ROW_KEYS


def _frame(data: StudyData, rows: list[dict], columns: tuple[str, ...]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(columns))
    df.attrs.update(
        study=data.study_name,
        profile=data.profile,
        metric_name=data.metric_name,
        higher_is_better=data.higher_is_better,
        baseline=data.baseline,
        layers=list(data.layers),
    )
    return df


def front_frame(data: StudyData) -> pd.DataFrame:
    """The feasible front on ``data.profile``, fastest first: one row per member.

    ``metric_change`` is the metric against the fp32 teacher, positive = better (``metric_drop`` is
    its negation); ``speedup_search`` is the fp32 median over the member's, measured in alternation
    inside the trial; ``speedup_remeasured`` the same ratio from the front's re-measurement (None
    until ``autocl remeasure`` or the end of a search ran); ``not_faster`` goes with
    ``speedup_search``. ``df.attrs`` holds the study, profile, metric name and baseline. Empty (with
    the columns) when the study has no front yet.

    Args:
        data: The study on one profile (see :func:`autocl.report.study_data`).

    Returns:
        One row per front member, with the columns ``FRONT_COLUMNS``.
    """
    return _frame(data, [t.to_row() for t in data.front], FRONT_COLUMNS)


def trials_frame(data: StudyData) -> pd.DataFrame:
    """Every trial with its status on ``data.profile`` and the reason for anything not on the front.

    The statuses are front, dominated, infeasible, unmeasured, failed and pending.

    Args:
        data: The study on one profile (see :func:`autocl.report.study_data`).

    Returns:
        One row per trial, with its ``status``, ``reason`` and ``constraints`` columns.
    """
    rows = [
        {**t.to_row(), "status": t.status, "reason": t.reason, "constraints": dict(t.constraints) or None}
        for t in data.trials
    ]
    return _frame(data, rows, ("trial", "status", "reason", *FRONT_COLUMNS[1:], "constraints"))


__all__ = ["FRONT_COLUMNS", "front_frame", "trials_frame"]
