"""Learning curves of a fidelity ladder in the report: data first (one curve per student, at the
rung it reached, stopped ones flagged), then the figure and the front table's steps column."""

from __future__ import annotations

from autocl.report import build_report, study_data
from autocl.report._figures import learning_curve_figure
from autocl.report._html import render_html, report_figures
from autocl.report._trials import learning_curves
from tests.report.studies import PROFILE, config, synthetic_study, trial_row


def _ladder(ratio: float, steps: int, key: str, curve: list, rung: int, **more) -> dict:
    cfg = config(ratio, {"conv1": "int8", "conv2": "int8", "fc": "fp32"})
    cfg["distill"].update(steps=steps, ladder_steps=9)
    return {
        "config": cfg,
        "student_key": key,
        "distilled": True,
        "fidelity": {"rung": rung, "steps": steps, "metric": curve[-1][1], "curve": curve},
        **more,
    }


def _study():
    rows = [
        trial_row(0.80, 1.0, 10, bits="88f", ratio=0.5, extra=_ladder(0.5, 3, "a3", [[0, 0.5], [3, 0.7]], 0)),
        trial_row(0.60, 0.9, 10, bits="88f", ratio=0.5, extra=_ladder(0.5, 3, "b3", [[0, 0.4], [3, 0.5]], 0)),
        trial_row(
            0.95,
            1.0,
            10,
            bits="88f",
            ratio=0.5,
            extra=_ladder(0.5, 9, "a9", [[0, 0.5], [3, 0.7], [9, 0.9]], 1, rung_of=0),
        ),
        trial_row(0.97, 2.0, 40, bits="fff", ratio=0.0),
        # trial 0's student at another precision: its curve is trial 0's, which goes on in trial 2's
        trial_row(0.81, 1.5, 12, bits="f8f", ratio=0.5, extra=_ladder(0.5, 3, "a3", [[0, 0.5], [3, 0.7]], 0)),
    ]
    return synthetic_study(rows, baseline={"metric": 0.97, "latency_ms": 2.0, "size_kb": 40.0})


def test_one_curve_per_student_at_the_rung_it_reached():
    data = study_data(_study(), PROFILE)
    curves = learning_curves(data)
    assert [c.trial for c in curves] == [1, 2]  # trial 0's curve goes on in trial 2's
    stopped, top = curves
    assert stopped.stopped and stopped.steps == (0, 3) and stopped.metric == (0.4, 0.5)
    assert not top.stopped and top.steps == (0, 3, 9) and top.on_front
    by = {t.number: t for t in data.trials}
    assert by[0].promoted and not by[0].stopped and by[1].stopped
    assert "rung 1" in by[2].notes[0] and "stopped" in by[1].notes[0]
    assert by[2].to_row()["distill_steps"] == 9 and by[3].to_row()["distill_steps"] is None


def test_the_figure_draws_stopped_students_faint_and_the_table_shows_steps(tmp_path):
    study = _study()
    report = build_report(study, PROFILE, cache_root=tmp_path)
    fig = learning_curve_figure(report.data, report.curves)
    assert [t.opacity for t in fig.data] == [0.3, 1.0] and list(fig.data[1].x) == [0, 3, 9]
    figures = report_figures(report)
    assert "learning-curves" in figures
    html = render_html(report, figures)
    assert 'id="fig-learning-curves"' in html and "<th>steps</th>" in html
    # a study without a ladder has no curve figure
    plain = synthetic_study([trial_row(0.9, 1.0, 10)], baseline={"metric": 0.9, "latency_ms": 2.0, "size_kb": 40.0})
    assert "learning-curves" not in report_figures(build_report(plain, PROFILE, cache_root=tmp_path))
