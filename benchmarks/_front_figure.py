"""Fidelity against speed-up: autocl's front with every other row of a comparison on it.

``points`` turns one ``compare_baselines`` result into plain data (one point per row, in the units of the
table: the metric and the speed-up over fp32 from the same interleaved run); ``figure`` draws it with
plotly; ``write`` saves the data as JSON and the figure as HTML (plotly.js from its CDN: the data file is
the record, the page a view of it).
"""

from __future__ import annotations

import json
from pathlib import Path

KIND_STYLE = {
    "autocl": dict(color="#1f5fbf", symbol="circle", size=11),
    "peer": dict(color="#d62728", symbol="diamond", size=13),
    "by hand": dict(color="#2ca02c", symbol="square", size=10),
    "fp32": dict(color="#111111", symbol="x", size=11),
}


def points(result: dict) -> dict:
    """``{"workload", "metric", "max_drop", "baseline_metric", "points": [{"name", "kind", "metric",
    "speedup", "file_kb", "shipped_kb"}]}``, autocl's front sorted by speed-up."""
    kinds = result.get("row_kinds", {})
    pts = [
        {
            "name": name,
            "kind": kinds.get(name, "by hand"),
            "metric": row["metric"],
            "speedup": row["speedup"],
            "file_kb": row.get("file_kb"),
            "shipped_kb": row.get("shipped_kb"),
        }
        for name, row in result["rows"].items()
    ]
    pts.sort(key=lambda p: (p["kind"] != "autocl", p["speedup"]))
    return {
        "workload": result["workload"],
        "metric": result["metric"],
        "max_drop": result["max_drop"],
        "baseline_metric": result["rows"]["fp32"]["metric"],
        "profile": result["profile"],
        "points": pts,
    }


def figure(data: dict):
    import plotly.graph_objects as go

    fig = go.Figure()
    front = [p for p in data["points"] if p["kind"] == "autocl"]
    if front:
        fig.add_trace(
            go.Scatter(
                x=[p["speedup"] for p in front],
                y=[p["metric"] for p in front],
                mode="lines+markers",
                name="autocl front",
                text=[p["name"] for p in front],
                line=dict(color=KIND_STYLE["autocl"]["color"]),
                marker=KIND_STYLE["autocl"],
                hovertemplate="%{text}<br>%{x:.2f}x, %{y:.4f}<extra></extra>",
            )
        )
    for kind in ("peer", "by hand", "fp32"):
        pts = [p for p in data["points"] if p["kind"] == kind]
        if pts:
            fig.add_trace(
                go.Scatter(
                    x=[p["speedup"] for p in pts],
                    y=[p["metric"] for p in pts],
                    mode="markers+text",
                    name=kind,
                    text=[p["name"] for p in pts],
                    textposition="top center",
                    textfont=dict(size=9),
                    marker=KIND_STYLE[kind],
                    hovertemplate="%{text}<br>%{x:.2f}x, %{y:.4f}<extra></extra>",
                )
            )
    bound = data["baseline_metric"] - data["max_drop"]
    fig.add_hline(y=bound, line=dict(dash="dot", color="#888"), annotation_text=f"bound {bound:.4f}")
    fig.update_layout(
        template="plotly_white",
        title=f"{data['workload']}: {data['metric']} against speed-up over "
        f"fp32 (one interleaved run, {data['profile']})",
        xaxis_title="speed-up over fp32",
        yaxis_title=data["metric"],
        legend=dict(orientation="h", y=-0.18),
    )
    return fig


def write(result: dict, base: Path) -> list[Path]:
    """``base``.json (the data) and ``base``.html (the figure)."""
    data = points(result)
    base.with_suffix(".json").write_text(json.dumps(data, indent=1))
    figure(data).write_html(str(base.with_suffix(".html")), include_plotlyjs="cdn")
    return [base.with_suffix(".json"), base.with_suffix(".html")]
