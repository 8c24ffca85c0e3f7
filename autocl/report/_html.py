"""The report page: one self-contained HTML file, plotly's script embedded (no CDN, works offline).

Each figure is stored as JSON in a ``<script type="application/json" class="autocl-figure">``
block next to its ``<div>``, and the report's data (front, trial statuses) in
``<script id="autocl-data">``: a test or a script can read both back without executing anything.
Once every figure is drawn the page sets ``data-rendered`` on ``<body>`` to their count, and
``data-errors`` if one failed.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import optuna

from autocl.report._frames import front_frame
from autocl.report._report import ReportData, build_report
from autocl.report._trials import DOMINATED, FAILED, FRONT, INFEASIBLE, PENDING, UNMEASURED

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1280px;padding:16px 28px;
color:#1d1d1f}
h1{font-size:1.6em;margin-bottom:4px}h2{margin-top:34px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555}.note{color:#6b4e00;background:#fff7e0;padding:6px 10px;border-radius:4px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:14px}.grid .figure{min-height:420px}
table{border-collapse:collapse;font-size:.86em;margin:8px 0}th,td{border-bottom:1px solid #e5e5e5;padding:4px 8px;
text-align:right;white-space:nowrap}th{background:#f4f5f7}td.l,th.l{text-align:left}td.wrap{white-space:normal;
text-align:left;max-width:640px}code{background:#f4f5f7;padding:1px 4px;border-radius:3px}
.counts span{display:inline-block;margin-right:14px}ul.layers{margin:2px 0 10px 0}
"""

RENDER_JS = """
(function(){
  var blocks = document.querySelectorAll('script.autocl-figure'), pending = [], errors = [];
  blocks.forEach(function(b){
    try {
      var fig = JSON.parse(b.textContent);
      pending.push(Plotly.newPlot(document.getElementById(b.dataset.target), fig.data, fig.layout,
                                  {responsive: true, displaylogo: false}));
    } catch (e) { errors.push(b.dataset.target + ': ' + e); console.error('autocl figure ' + b.dataset.target, e); }
  });
  Promise.all(pending).then(function(){
    document.body.setAttribute('data-rendered', String(pending.length));
    if (errors.length) document.body.setAttribute('data-errors', errors.join(' | '));
  }, function(e){ console.error('autocl figure', e); document.body.setAttribute('data-errors', String(e)); });
})();
"""


def _e(x) -> str:
    return html.escape(str(x))


def _script_json(obj_json: str) -> str:
    # "</script>" inside a JSON string would end the block early
    return obj_json.replace("</", "<\\/")


def _f(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _cls(name: str) -> str:
    return f' class="{name}"' if name else ""


def _table(
    headers: list[str],
    rows: list[list[str]],
    left: frozenset[int] | set[int] = frozenset(),
    wrap: frozenset[int] | set[int] = frozenset(),
    table_id: str = "",
) -> str:
    """An HTML table; cells are already escaped HTML. Columns in ``left``/``wrap`` align left."""

    def kind(i: int) -> str:
        return "wrap" if i in wrap else "l" if i in left else ""

    head = "".join(f"<th{_cls('l' if kind(i) else '')}>{_e(h)}</th>" for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f"<td{_cls(kind(i))}>{c}</td>" for i, c in enumerate(r)) + "</tr>" for r in rows)
    tid = f' id="{table_id}"' if table_id else ""
    return f"<table{tid}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _front_table(report: ReportData) -> str:
    data = report.data
    rows_data = front_frame(data).to_dict("records")
    remeasured = any(r["speedup_remeasured"] is not None for r in rows_data)
    headers = [
        "trial",
        "prune",
        "MACs kept",
        "T",
        "alpha",
        "steps",
        "bits per layer",
        data.metric_name,
        "Δ vs fp32 (+ better)",
        "latency ms",
        "± IQR",
        "p90 ms",
        "speed-up (search)",
        *(["speed-up (re-measured)"] if remeasured else []),
        "size KB",
        "peak MB",
        "notes",
        "artifact sha256",
    ]
    rows = []
    base = data.baseline or {}
    if base:
        rows.append(
            [
                "fp32",
                "0.00",
                "100%",
                "-",
                "-",
                "-",
                "teacher, unpruned",
                _f(base.get("metric"), ".4f"),
                "",
                _f(base.get("latency_ms"), ".4f"),
                _f(base.get("latency_iqr_ms"), ".4f"),
                "",
                "1.00x",
                *(["1.00x"] if remeasured else []),
                _f(base.get("size_kb"), ".1f"),
                "",
                "",
                "",
            ]
        )
    for r in rows_data:
        distilled = bool(r["distilled"])
        rows.append(
            [
                str(r["trial"]),
                _f(r["prune_ratio"], ".2f"),
                "" if r["kept_macs"] is None else f"{100 * r['kept_macs']:.0f}%",
                _f(r["temperature"], "g") if distilled else "-",
                _f(r["alpha"], "g") if distilled else "-",
                str(r["distill_steps"]) if r["distill_steps"] else "-",
                f"<code>{_e(r['bits'])}</code>",
                _f(r["metric"], ".4f"),
                _f(r["metric_change"], "+.4f"),
                _f(r["latency_ms"], ".4f"),
                _f(r["latency_iqr_ms"], ".4f"),
                _f(r["latency_p90_ms"], ".4f"),
                _x(r["speedup_search"]),
                *([_x(r["speedup_remeasured"])] if remeasured else []),
                _f(r["size_kb"], ".1f"),
                _f(r["peak_memory_mb"], ".1f"),
                _e(r["notes"]),
                f"<code>{_e(str(r['artifact_sha256'])[:12])}</code>",
            ]
        )
    note = (
        "<p class='meta'>Δ vs fp32 is the metric change against the fp32 teacher, positive = better. Speed-up "
        "(search): the teacher's median latency over the member's, both measured in alternation inside the "
        "trial; 'not faster than fp32' is decided on that pair."
        + (
            " Speed-up (re-measured): the same ratio from re-measuring the front (autocl remeasure)."
            if remeasured
            else ""
        )
        + "</p>"
    )
    return _table(headers, rows, left={6, 15 + remeasured}, table_id="front-table") + note


def _x(speedup: float | None) -> str:
    return "-" if speedup is None else f"{speedup:.2f}x"


def _apart_table(report: ReportData) -> str:
    data = report.data
    apart = data.with_status(INFEASIBLE, FAILED, UNMEASURED, PENDING)
    if not apart:
        return "<p>None: every trial completed, met its budgets and was measured on this profile.</p>"
    rows = [
        [
            str(t.number),
            _e(t.status),
            _e(t.reason),
            _f(t.metric, ".4f"),
            _f(t.latency_ms, ".4f"),
            _f(t.size_kb, ".1f"),
            f"<code>{_e(t.bits)}</code>" if t.bits else "",
        ]
        for t in apart
    ]
    return _table(
        ["trial", "status", "why", data.metric_name, "latency ms", "size KB", "bits"],
        rows,
        left={1, 6},
        wrap={2},
        table_id="apart-table",
    )


def _explanations(report: ReportData) -> str:
    parts = []
    for ex in report.explanations:
        items = "".join(f"<li><b>{_e(n.layer)}</b>: {_e(n.text)}</li>" for n in ex.notes)
        body = (
            f"<ul class='layers'>{items}</ul>"
            if items
            else "<p>every layer at the lowest precision allowed, pruned as configured</p>"
        )
        parts.append(f"<h3 id='explain-{ex.trial}'>{_e(ex.summary)}</h3>{body}")
    note = (
        ""
        if report.data.sensitivity
        else "<p class='note'>Sensitivity not measured: this study has no per-layer sensitivity table.</p>"
    )
    shares = (
        ""
        if report.shares and not report.shares_note
        else f"<p class='note'>Latency share per layer: {_e(report.shares_note)}.</p>"
    )
    return note + _narrowed_note(report.data.narrowed) + shares + "".join(parts)


def _narrowed_note(narrowed: dict | None) -> str:
    """What the profiles removed from the space (the study's ``narrowed`` attribute), or nothing."""
    if not narrowed:
        return ""
    lost = [*narrowed.get("removed", []), *(f"{p} as a fallback" for p in narrowed.get("fallback_removed", []))]
    return (
        f"<p class='note' id='narrowed'>Precisions not searched: {_e(', '.join(lost))}, removed by profile "
        f"{_e(narrowed.get('profile', '?'))} ({_e(narrowed.get('reason', ''))}).</p>"
    )


def _figure(fig_id: str, figures: dict) -> str:
    if fig_id not in figures:
        return ""
    spec = _script_json(figures[fig_id].to_json())
    return (
        f'<div id="fig-{fig_id}" class="figure"></div>'
        f'<script type="application/json" class="autocl-figure" data-target="fig-{fig_id}">{spec}</script>'
    )


def _payload(report: ReportData) -> str:
    data = report.data
    payload = {
        "study": data.study_name,
        "profile": data.profile,
        "profiles": list(data.profiles),
        "metric_name": data.metric_name,
        "higher_is_better": data.higher_is_better,
        "layers": list(data.layers),
        "baseline": data.baseline,
        "front": front_frame(data).to_dict("records"),
        "trials": [{"trial": t.number, "status": t.status, "reason": t.reason} for t in data.trials],
        "bits": {"trials": list(report.bits.trials), "values": [list(v) for v in report.bits.values]},
        "pruning": {"trials": list(report.pruning.trials), "values": [list(v) for v in report.pruning.values]},
        "importance": report.importance.values,
        "hypervolume": list(report.history.hypervolume),
        "generated_at": report.generated_at,
        "versions": report.versions,
    }
    return _script_json(json.dumps(payload, default=str))


def render_html(report: ReportData, figures: dict) -> str:
    """The whole page as a string."""
    import plotly.offline

    data = report.data
    counts = {s: len(data.with_status(s)) for s in (FRONT, DOMINATED, INFEASIBLE, FAILED, UNMEASURED, PENDING)}
    base = data.baseline or {}
    base_line = (
        (
            f"fp32 teacher: {data.metric_name} {_f(base.get('metric'), '.4f')}, latency "
            f"{_f(base.get('latency_ms'), '.4f')} ms, size {_f(base.get('size_kb'), '.1f')} KB"
        )
        if base
        else "no fp32 baseline stored"
    )
    dashboard = (
        (
            f"<p class='meta'>Browse the raw study with <code>optuna-dashboard {_e(report.storage)}</code> "
            "(same storage; objectives are named metric, normalized_ms, size_kb: the latency is the fp32 "
            "baseline over the speed-up; latency_ms, the raw median, in studies made before).</p>"
        )
        if report.storage
        else ""
    )
    pruning = _figure("pruning", figures) or f"<p class='note'>{_e(report.pruning.note)}</p>"
    prune_note = (
        f"<p class='note'>{_e(report.pruning.note)}</p>" if "pruning" in figures and report.pruning.note else ""
    )
    importance = (
        _figure("importance", figures) or f"<p class='note'>Importance not computed: {_e(report.importance.note)}.</p>"
    )
    wl = data.workload.get("name", "")
    direction = "higher" if data.higher_is_better else "lower"
    others = f" (of {', '.join(data.profiles)})" if len(data.profiles) > 1 else ""
    count_line = "".join(f"<span>{_e(k)}: <b id='count-{k}'>{v}</b></span>" for k, v in counts.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>autocl report: {_e(data.study_name)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style>
<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script></head>
<body>
<h1>autocl report: study <code>{_e(data.study_name)}</code></h1>
<p class="meta">workload <b>{_e(wl)}</b> ({_e(data.metric_name)}, {direction} is better) · profile
<b>{_e(data.profile)}</b>{_e(others)} · {_e(base_line)} · generated {_e(report.generated_at)} by autocl
{_e(report.versions.get("autocl", ""))}</p>
<p class="counts">{count_line}</p>
{dashboard}
<p class="meta">The front is the feasible Pareto front on this profile: completed trials that met every budget,
not dominated on {_e(data.metric_name)}, median latency and size. Hover a point for its trial and configuration.</p>
<h2>Pareto front</h2>
<div class="grid">{_figure("pareto-latency", figures)}{_figure("pareto-size", figures)}</div>
{_figure("pareto-3d", figures)}
<h2>Front members</h2>
{_front_table(report)}
<h2>Per layer</h2>
{_figure("bits", figures)}
{pruning}{prune_note}
<h3>Why layers were spared</h3>
{_explanations(report)}
<h2>Search</h2>
{importance}
<div class="grid">{_figure("history", figures)}{_figure("hypervolume", figures)}</div>
{_figure("learning-curves", figures)}
<h2>Infeasible, failed and unmeasured trials</h2>
{_apart_table(report)}
<script type="application/json" id="autocl-data">{_payload(report)}</script>
<script type="text/javascript">{RENDER_JS}</script>
</body></html>
"""


def report_figures(report: ReportData) -> dict:
    """The report's figures.

    Args:
        report: The gathered report (see :func:`autocl.report.build_report`).

    Returns:
        ``{figure id: plotly Figure}``, in page order; a figure without data is left out.
    """
    from autocl.report import _figures as F

    figs = {
        "pareto-latency": F.pareto_figure(report.data, "latency_ms"),
        "pareto-size": F.pareto_figure(report.data, "size_kb"),
    }
    if report.n_objectives >= 3:
        figs["pareto-3d"] = F.pareto_3d(report.data)
    figs["bits"] = F.bits_figure(report.bits)
    if any(v is not None for row in report.pruning.values for v in row):
        figs["pruning"] = F.pruning_figure(report.pruning)
    if report.importance.values:
        figs["importance"] = F.importance_figure(report.importance)
    figs["history"] = F.history_figure(report.data, report.history)
    figs["hypervolume"] = F.hypervolume_figure(report.history)
    if report.curves:
        figs["learning-curves"] = F.learning_curve_figure(report.data, report.curves)
    return figs


def write_report(study: optuna.Study, path: str | Path, profile: str | None = None, **kwargs) -> Path:
    """Write the self-contained HTML report of ``study`` (plotly embedded, works offline) to ``path``.

    The file is written to a temporary name beside ``path`` and then moved into place.

    Args:
        study: The study.
        path: The HTML file (its parent directories are created).
        profile: The hardware profile (default: the search's primary profile).
        **kwargs: Passed to :func:`autocl.report.build_report` (``storage``, ``cache_root``, ``shares``,
            ``shares_note``).

    Returns:
        ``path``, as a ``Path``.

    Raises:
        StudyError: See :func:`autocl.report.build_report`.
    """
    report = build_report(study, profile, **kwargs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_html(report, report_figures(report)), encoding="utf-8")
    tmp.replace(path)
    return path


__all__ = ["render_html", "report_figures", "write_report"]
