"""The HTML report of a real search holds the figures and the data, readable without running it."""

import json
from html.parser import HTMLParser

import optuna
import pytest

from autocl.layer_latency import measure_layer_shares
from autocl.report import FRONT, build_report, pruning_map, study_data, write_report
from autocl.runtime import cache_dir
from autocl.study import read_front

FIGURES = {"pareto-latency", "pareto-size", "pareto-3d", "bits", "pruning", "importance", "history", "hypervolume"}


class _Page(HTMLParser):
    """Collects the figure JSON blocks, the data block, script sources and table rows."""

    def __init__(self):
        super().__init__()
        self.figures, self.data, self.sources, self.divs = {}, None, [], set()
        self.tables: dict[str, list[list[str]]] = {}
        self._script = self._table = None
        self._row: list[str] | None = None
        self._buf = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self._script, self._buf = a, ""
            if a.get("src"):
                self.sources.append(a["src"])
        elif tag == "div" and a.get("id"):
            self.divs.add(a["id"])
        elif tag == "table" and a.get("id"):
            self._table = a["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._row.append("")

    def handle_data(self, data):
        if self._script is not None:
            self._buf += data
        elif self._row is not None and self._row:
            self._row[-1] += data

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            if "autocl-figure" in (self._script.get("class") or ""):
                self.figures[self._script["data-target"].removeprefix("fig-")] = json.loads(self._buf)
            elif self._script.get("id") == "autocl-data":
                self.data = json.loads(self._buf)
            self._script = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None


@pytest.fixture(scope="module")
def page(mixed, tmp_path_factory):
    url, name = mixed
    study = optuna.load_study(study_name=name, storage=url)
    path = write_report(study, tmp_path_factory.mktemp("report") / "r.html", storage=url)
    html = path.read_text()
    parsed = _Page()
    parsed.feed(html)
    return study, html, parsed


def _trace(fig, name):
    return next(t for t in fig["data"] if t.get("name") == name)


def test_the_page_is_self_contained(page):
    _, html, p = page
    assert p.sources == []  # no CDN or any external script
    assert "Plotly.newPlot" in html and len(html) > 3_000_000  # plotly.js itself is inlined
    assert {f"fig-{f}" for f in FIGURES} <= p.divs


def test_every_figure_is_there_with_data(page):
    _, _, p = page
    assert set(p.figures) == FIGURES
    for name, fig in p.figures.items():
        assert fig["data"], name


def test_the_pareto_plot_shows_the_feasible_front_apart_from_the_rest(page):
    study, _, p = page
    data = study_data(study)
    fig = p.figures["pareto-latency"]
    front = _trace(fig, "Pareto front (feasible)")
    assert [c[0] for c in front["customdata"]] == [t.number for t in data.front]
    assert front["x"] == pytest.approx([t.latency_ms for t in data.front])
    dominated = _trace(fig, "dominated")
    assert dominated["marker"]["opacity"] < 0.5 and len(dominated["x"]) == len(data.with_status("dominated"))
    infeasible = _trace(fig, "infeasible (budget not met)")
    bad = data.with_status("infeasible")
    assert [c[0] for c in infeasible["customdata"]] == [t.number for t in bad] and len(bad) == 1
    assert "latency_budget" in infeasible["customdata"][0][8]
    # hovering shows the trial and its configuration
    assert "trial %{customdata[0]}" in front["hovertemplate"] and "bits" in front["hovertemplate"]
    assert _trace(fig, "trade-off")["mode"] == "lines"
    assert _trace(fig, "fp32 teacher")["x"] == [study.user_attrs["baseline"]["latency_ms"]]
    assert len(p.figures["pareto-3d"]["data"]) >= 2


def test_the_front_table_and_data_match_the_stored_front(page, searched):
    study, _, p = page
    url, name = searched
    stored = {r["trial"] for r in read_front(url, name, "test-cpu")}
    shown = [int(r[0]) for r in p.tables["front-table"][2:]]  # header, then the fp32 row
    assert set(shown) == {r["trial"] for r in p.data["front"]}
    # the copy's front is the real study's front: the extra trials are infeasible or failed
    assert set(shown) == stored
    assert p.data["profile"] == "test-cpu" and p.data["layers"] == study.user_attrs["workload"]["layers"]


def test_failed_and_infeasible_trials_are_listed_with_why(page):
    _, _, p = page
    rows = {r[1]: r for r in p.tables["apart-table"][1:]}
    assert "int4" in rows["failed"][2]
    assert "latency_budget exceeded by 0.25" in rows["infeasible"][2]


def test_bit_widths_heat_map_follows_the_bits_strings(page):
    study, _, p = page
    fig = p.figures["bits"]["data"][0]
    data = study_data(study)
    for row, t in zip(fig["z"], data.front):
        assert row == [8 if c == "8" else 32 for c in t.bits]
    assert fig["x"] == list(data.layers)


def test_pruning_per_layer_is_read_from_the_real_graphs(searched):
    url, name = searched
    data = study_data(optuna.load_study(study_name=name, storage=url))
    pruned = [t for t in data.trials if t.prune_ratio == 0.5 and t.status == FRONT]
    assert pruned, "the enqueued pruned trial should be on the front"
    m = pruning_map(data, cache_dir(), pruned)
    removed = dict(zip(m.layers, m.values[0]))
    assert removed["stages.0.conv1"] == pytest.approx(0.5) and removed["fc"] == 0.0  # the classifier keeps its 10


def test_layer_latency_shares_are_measured_when_asked(searched, digits):
    url, name = searched
    study = optuna.load_study(study_name=name, storage=url)
    shares, note = measure_layer_shares(study_data(study), digits)
    assert note == ""
    report = build_report(study, shares=shares, shares_note=note)
    for trial, shares in report.shares.items():
        assert sum(shares.values()) == pytest.approx(1.0)
        assert shares["stages.0.conv1"] > 0
    assert set(report.shares) == {t.number for t in report.data.front}
    notes = [n for ex in report.explanations for n in ex.notes]
    assert any(n.latency_share is not None and "% of latency" in n.text for n in notes)


def test_a_narrowed_space_is_noted_on_the_page():
    from autocl.report._html import render_html
    from tests.report.studies import synthetic_study, trial_row

    rows = [trial_row(0.9, 1.0, 10), trial_row(0.8, 0.5, 5)]
    plain = render_html(build_report(synthetic_study(rows, name="plain")), {})
    assert "id='narrowed'" not in plain
    study = synthetic_study(rows, name="narrowed")
    study.set_user_attr("narrowed", {"removed": ["fp16", "int8_dynamic"], "fallback_removed": ["int8_dynamic"],
                                     "profile": "old-cpu", "reason": "fp16: no float16 kernels <here>"})
    html = render_html(build_report(study), {})
    note = html[html.index("id='narrowed'"):]
    note = note[:note.index("</p>")]
    assert "fp16, int8_dynamic, int8_dynamic as a fallback" in note and "old-cpu" in note
    assert "&lt;here&gt;" in note  # the stored reason is escaped
