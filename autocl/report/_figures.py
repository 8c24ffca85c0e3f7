"""Plotly figures drawn from the report's plain data; nothing here reads the study."""

from __future__ import annotations

import plotly.graph_objects as go

from autocl.report._layers import LayerMap
from autocl.report._progress import History, Importance
from autocl.report._trials import DOMINATED, FRONT, INFEASIBLE, LearningCurve, StudyData, TrialInfo, dominates

COLORS = {FRONT: "#1f5fbf", DOMINATED: "#8c8c8c", INFEASIBLE: "#e07b00", "baseline": "#111111", "line": "#1f5fbf"}
LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=20, t=50, b=50), legend=dict(orientation="h", y=-0.18))
AXIS = {"latency_ms": "latency ms (median, {profile})", "size_kb": "size KB"}

_HOVER = (
    "<b>trial %{customdata[0]}</b> (%{customdata[8]})<br>prune %{customdata[1]} · T %{customdata[2]} · "
    "alpha %{customdata[3]}<br>bits %{customdata[4]}<br>%{customdata[9]} %{customdata[5]}<br>latency "
    "%{customdata[6]} ms<br>size %{customdata[7]} KB<extra></extra>"
)


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _custom(data: StudyData, ts: list[TrialInfo]) -> list[list]:
    return [
        [
            t.number,
            _fmt(t.prune_ratio, ".2f"),
            _fmt(t.temperature, "g") if t.distilled else "-",
            _fmt(t.alpha, "g") if t.distilled else "-",
            t.bits or "-",
            _fmt(t.metric, ".4f"),
            _fmt(t.latency_ms, ".4f"),
            _fmt(t.size_kb, ".1f"),
            t.status if not t.reason else f"{t.status}: {t.reason[:80]}",
            data.metric_name,
        ]
        for t in ts
    ]


def _points(data: StudyData, ts: list[TrialInfo], x: str, name: str, status: str, **marker) -> go.Scatter:
    return go.Scatter(
        x=[getattr(t, x) for t in ts],
        y=[t.metric for t in ts],
        mode="markers",
        name=name,
        customdata=_custom(data, ts),
        hovertemplate=_HOVER,
        marker=dict(color=COLORS[status], **marker),
    )


def front_line(data: StudyData, x: str) -> list[TrialInfo]:
    """Front members that are non-dominated on (metric, ``x``) alone, sorted by ``x``: the 2-D
    trade-off curve drawn through the front."""
    sign = -1.0 if data.higher_is_better else 1.0
    front = data.front
    keyed = [(t, (sign * t.objectives[0], getattr(t, x))) for t in front]
    line = [t for t, k in keyed if not any(dominates(o, k) for _, o in keyed)]
    return sorted(line, key=lambda t: (getattr(t, x), t.number))


def pareto_figure(data: StudyData, x: str = "latency_ms") -> go.Figure:
    """The metric against latency (or size).

    Front members are solid and joined, dominated trials faded, infeasible trials marked apart and
    the fp32 teacher drawn as a star.

    Args:
        data: The study on one profile.
        x: The trial attribute on the x axis: ``latency_ms`` or ``size_kb``.

    Returns:
        The plotly figure.
    """
    fig = go.Figure()
    measured = [t for t in data.trials if t.measured and getattr(t, x) is not None]
    dominated = [t for t in measured if t.status == DOMINATED]
    infeasible = [t for t in measured if t.status == INFEASIBLE]
    if dominated:
        fig.add_trace(_points(data, dominated, x, "dominated", DOMINATED, size=8, opacity=0.35))
    if infeasible:
        fig.add_trace(
            _points(data, infeasible, x, "infeasible (budget not met)", INFEASIBLE, size=10, symbol="x", opacity=0.8)
        )
    line = front_line(data, x)
    if line:
        fig.add_trace(
            go.Scatter(
                x=[getattr(t, x) for t in line],
                y=[t.metric for t in line],
                mode="lines",
                line=dict(color=COLORS["line"], width=2, shape="hv"),
                name="trade-off",
                hoverinfo="skip",
            )
        )
    front = data.front
    fig.add_trace(_points(data, front, x, "Pareto front (feasible)", FRONT, size=11, line=dict(color="white", width=1)))
    base = data.baseline or {}
    if base.get(x) is not None and base.get("metric") is not None:
        fig.add_trace(
            go.Scatter(
                x=[base[x]],
                y=[base["metric"]],
                mode="markers",
                name="fp32 teacher",
                marker=dict(symbol="star", size=15, color=COLORS["baseline"]),
                hovertemplate=f"<b>fp32 teacher</b><br>{data.metric_name} %{{y:.4f}}<br>{x} %{{x:.4f}}<extra></extra>",
            )
        )
    fig.update_layout(
        title=f"{data.metric_name} vs {x.replace('_', ' ')}",
        **LAYOUT,
        xaxis_title=AXIS[x].format(profile=data.profile),
        yaxis_title=data.metric_name,
    )
    return fig


def pareto_3d(data: StudyData) -> go.Figure:
    """All three objectives at once: front members solid, dominated faded, infeasible marked.

    Args:
        data: The study on one profile.

    Returns:
        The plotly figure.
    """
    fig = go.Figure()
    for status, name, marker in (
        (DOMINATED, "dominated", dict(size=4, opacity=0.35)),
        (INFEASIBLE, "infeasible", dict(size=5, symbol="x")),
        (FRONT, "Pareto front (feasible)", dict(size=6)),
    ):
        ts = [t for t in data.with_status(status) if t.measured]
        if ts:
            fig.add_trace(
                go.Scatter3d(
                    x=[t.latency_ms for t in ts],
                    y=[t.size_kb for t in ts],
                    z=[t.metric for t in ts],
                    mode="markers",
                    name=name,
                    customdata=_custom(data, ts),
                    hovertemplate=_HOVER,
                    marker=dict(color=COLORS[status], **marker),
                )
            )
    fig.update_layout(
        title="metric, latency and size together",
        **{**LAYOUT, "margin": dict(l=0, r=0, t=50, b=0)},
        scene=dict(xaxis_title=f"latency ms ({data.profile})", yaxis_title="size KB", zaxis_title=data.metric_name),
        height=560,
    )
    return fig


def layer_heatmap(m: LayerMap, *, colorscale: str, zmin: float, zmax: float, colorbar: str, text: str) -> go.Figure:
    """One row per front member, one column per layer; hovering gives the cell's label."""
    fig = go.Figure(
        go.Heatmap(
            z=[list(r) for r in m.values],
            x=list(m.layers),
            y=[f"trial {n}" for n in m.trials],
            text=[list(r) for r in m.labels],
            hovertemplate="%{y} · %{x}<br>%{text}<extra></extra>",
            texttemplate=text,
            colorscale=colorscale,
            zmin=zmin,
            zmax=zmax,
            xgap=2,
            ygap=2,
            colorbar=dict(title=colorbar),
        )
    )
    fig.update_layout(
        title=m.title,
        **LAYOUT,
        height=140 + 32 * max(1, len(m.trials)),
        yaxis=dict(autorange="reversed", type="category"),
        xaxis=dict(type="category", tickangle=-30),
    )
    return fig


def bits_figure(m: LayerMap) -> go.Figure:
    return layer_heatmap(m, colorscale="Viridis", zmin=4, zmax=32, colorbar="bits", text="%{text}")


def pruning_figure(m: LayerMap) -> go.Figure:
    return layer_heatmap(m, colorscale="Reds", zmin=0, zmax=1, colorbar="removed", text="%{z:.0%}")


def importance_figure(imp: Importance) -> go.Figure:
    """Grouped bars: each parameter's share of each objective's variance (fANOVA)."""
    fig = go.Figure()
    params = sorted(
        {p for v in imp.values.values() for p in v}, key=lambda p: -max(v.get(p, 0.0) for v in imp.values.values())
    )
    for name in imp.objectives:
        vals = imp.values.get(name, {})
        fig.add_trace(
            go.Bar(
                y=params,
                x=[vals.get(p, 0.0) for p in params],
                name=name,
                orientation="h",
                hovertemplate="%{y}: %{x:.2f} of " + name + "<extra></extra>",
            )
        )
    layout = {**LAYOUT, "legend": dict(orientation="h", y=1.0, yanchor="bottom", x=0.5)}
    fig.update_layout(
        title="hyperparameter importance (fANOVA, per objective)",
        barmode="group",
        **layout,
        height=180 + 22 * len(params) * max(1, len(imp.objectives)),
        yaxis=dict(autorange="reversed"),
        xaxis_title="importance (sums to 1 per objective)",
    )
    return fig


def history_figure(data: StudyData, h: History) -> go.Figure:
    """Each trial's metric in trial order, coloured by status, with the best feasible metric so far."""
    fig = go.Figure()
    by_number = {t.number: t for t in data.trials}
    for status in (DOMINATED, INFEASIBLE, FRONT):
        idx = [i for i, s in enumerate(h.status) if s == status and h.metric[i] is not None]
        if idx:
            ts = [by_number[h.trials[i]] for i in idx]
            fig.add_trace(
                go.Scatter(
                    x=[h.trials[i] for i in idx],
                    y=[h.metric[i] for i in idx],
                    mode="markers",
                    name=status,
                    customdata=_custom(data, ts),
                    hovertemplate=_HOVER,
                    marker=dict(color=COLORS[status], size=8, opacity=0.4 if status == DOMINATED else 1.0),
                )
            )
    fig.add_trace(
        go.Scatter(
            x=list(h.trials),
            y=list(h.best_metric),
            mode="lines",
            name="best feasible so far",
            line=dict(shape="hv", color="#2a9d55"),
        )
    )
    fig.update_layout(title="optimization history", **LAYOUT, xaxis_title="trial", yaxis_title=data.metric_name)
    return fig


def hypervolume_figure(h: History) -> go.Figure:
    fig = go.Figure(
        go.Scatter(
            x=list(h.trials),
            y=list(h.hypervolume),
            mode="lines+markers",
            name="hypervolume",
            line=dict(shape="hv", color="#7b3fb8"),
        )
    )
    fig.update_layout(
        title="hypervolume of the feasible front over time",
        **LAYOUT,
        xaxis_title="trial",
        yaxis_title="hypervolume (normalized objectives)",
        showlegend=False,
    )
    return fig


def learning_curve_figure(data: StudyData, curves: list[LearningCurve]) -> go.Figure:
    """Metric on held-out training rows against distillation steps, one line per ladder student;
    students the ladder stopped are faint, front members bold."""
    fig = go.Figure()
    for c in curves:
        color = COLORS[FRONT] if c.on_front else COLORS[DOMINATED]
        fig.add_trace(
            go.Scatter(
                x=list(c.steps),
                y=list(c.metric),
                mode="lines+markers",
                name=f"trial {c.trial}" + (" (stopped)" if c.stopped else ""),
                opacity=0.3 if c.stopped else 1.0,
                line=dict(color=color, width=3 if c.on_front else 1.5),
                marker=dict(size=5),
                hovertemplate=(
                    f"<b>trial {c.trial}</b> · prune {_fmt(c.prune_ratio, '.2f')} · {_fmt(c.latency_ms, '.4f')} ms"
                    "<br>%{x} steps: %{y:.4f}<extra></extra>"
                ),
            )
        )
    fig.update_layout(
        title="learning curves on the fidelity ladder (held-out training rows; faint: stopped)",
        **LAYOUT,
        xaxis_title="distillation steps",
        yaxis_title=data.metric_name,
        showlegend=len(curves) <= 12,
    )
    return fig


__all__ = [
    "bits_figure",
    "front_line",
    "history_figure",
    "hypervolume_figure",
    "importance_figure",
    "layer_heatmap",
    "learning_curve_figure",
    "pareto_3d",
    "pareto_figure",
    "pruning_figure",
]
