"""Commands as a user runs them, on one tiny searched study: `sensitivity`, `front --format csv`,
`layers --profile`, `report --layer-latency`, `export --overwrite` and `apply` (a Taylor config)."""

import csv
import io
import json

import pytest
import yaml
from typer.testing import CliRunner

from tests.cli.test_cli import PROFILE, SPACE

STUDY = "cmds"


class Run:
    def __init__(self, result) -> None:
        self.returncode = result.exit_code
        self.stdout = result.stdout
        self.stderr = result.stderr
        self.exception = result.exception


def autocl(*args, cwd):
    """The command run in this process (one torch import for the whole module), in folder ``cwd``."""
    import os

    from autocl.cli import app

    here = os.getcwd()
    os.chdir(cwd)
    try:
        return Run(CliRunner().invoke(app, list(args)))
    finally:
        os.chdir(here)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A 2-trial study on `digits` with the sensitivity pre-pass (int8 on each of its layers alone)."""
    d = tmp_path_factory.mktemp("commands")
    (d / "space.yaml").write_text(SPACE.replace("calibration_samples: 32", "calibration_samples: 32, "
                                                "sensitivity_samples: 64"))
    (d / "profile.yaml").write_text(PROFILE)
    db = f"sqlite:///{d / 'cmds.db'}"
    run = autocl("search", "--workload", "digits", "--space", "space.yaml", "--profile", "profile.yaml", "--study",
                 STUDY, "--trials", "2", "--storage", db, "--sensitivity", "--no-polish", cwd=d)
    assert run.returncode == 0, run.stderr
    return d, db


def test_sensitivity_prints_the_table_the_search_stored(searched):
    import optuna

    d, db = searched
    stored = optuna.load_study(study_name=STUDY, storage=db).user_attrs["sensitivity"]
    run = autocl("sensitivity", "--study", STUDY, "--storage", db, cwd=d)
    assert run.returncode == 0, run.stderr
    assert "metric drop per layer" in run.stdout and f"'{STUDY}'" in run.stdout  # the title wraps to the table
    rows = {line.split("│")[1].strip(): line for line in run.stdout.splitlines() if line.count("│") >= 3}
    assert set(stored) <= set(rows) and "stages.0.conv1" in stored
    for layer, drops in stored.items():
        assert f"{drops['int8']:+.5f}" in rows[layer]


def test_front_as_csv_has_the_json_rows(searched):
    d, db = searched
    as_csv = autocl("front", "--study", STUDY, "--storage", db, "--format", "csv", cwd=d)
    as_json = autocl("front", "--study", STUDY, "--storage", db, "--format", "json", cwd=d)
    assert as_csv.returncode == 0 and as_json.returncode == 0, as_csv.stderr + as_json.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    want = json.loads(as_json.stdout)
    assert rows and len(rows) == len(want)
    assert {"trial", "metric", "latency_ms"} <= set(rows[0])
    for got, expected in zip(rows, want):
        assert int(got["trial"]) == expected["trial"]
        assert float(got["latency_ms"]) == pytest.approx(expected["latency_ms"])
        assert float(got["metric"]) == pytest.approx(expected["metric"])


def test_layers_with_a_profile_shows_graph_ops_and_what_the_provider_refuses(searched):
    d, _ = searched
    run = autocl("layers", "--workload", "digits", "--profile", "profile.yaml", cwd=d)
    assert run.returncode == 0, run.stderr
    conv = next(line for line in run.stdout.splitlines() if "stages.0.conv1" in line)
    assert "Conv" in conv and "int8(8)" in conv and "fp16(h)" not in conv
    fc = next(line for line in run.stdout.splitlines() if "│ fc " in line)
    assert "Gemm" in fc or "MatMul" in fc
    assert any(line.startswith("refused fp16") for line in run.stdout.splitlines()), run.stdout


def test_report_with_layer_latency_times_each_front_members_layers(searched):
    d, db = searched
    run = autocl("report", "--study", STUDY, "--storage", db, "--layer-latency", "-o", "r.html", cwd=d)
    assert run.returncode == 0, run.stderr
    page = (d / "r.html").read_text()
    assert "% of latency" in page and "not measured (run 'autocl report --layer-latency'" not in page
    plain = autocl("report", "--study", STUDY, "--storage", db, "-o", "plain.html", cwd=d)
    assert plain.returncode == 0 and "% of latency" not in (d / "plain.html").read_text()


def export_args(db, out):
    return ("export", "--study", STUDY, "--storage", db, "--pick", "fastest-within:1.0", "-o", out,
            "--latency-tolerance", "20")


@pytest.fixture(scope="module")
def bundle(searched):
    d, db = searched
    run = autocl(*export_args(db, "bundle"), cwd=d)
    assert run.returncode == 0, run.stderr
    return d / "bundle"


def test_export_replaces_an_earlier_bundle_only_with_overwrite(searched, bundle):
    d, db = searched
    args = export_args(db, "bundle")
    card = (d / "bundle" / "MODEL_CARD.md").stat().st_mtime_ns
    again = autocl(*args, cwd=d)
    assert again.returncode == 2 and "--overwrite" in again.stderr and "Traceback" not in again.stderr
    replaced = autocl(*args, "--overwrite", cwd=d)
    assert replaced.returncode == 0, replaced.stderr
    assert (d / "bundle" / "MODEL_CARD.md").stat().st_mtime_ns != card
    assert sorted(p.name for p in (d / "bundle").iterdir()) == sorted(
        ["model.onnx", "weights.pt", "config.yaml", "MODEL_CARD.md", "export.json"])
    (d / "bundle" / "notes.txt").write_text("mine")  # a folder with the user's files is never replaced
    refused = autocl(*args, "--overwrite", cwd=d)
    assert refused.returncode == 2 and "notes.txt" in refused.stderr and (d / "bundle" / "notes.txt").is_file()
    (d / "bundle" / "notes.txt").unlink()


def test_apply_rebuilds_a_taylor_configuration(searched, bundle):
    d, _ = searched
    cfg = {"prune": {"ratio": 0.5, "importance": "taylor", "round_to": 8},
           "distill": {"temperature": 4.0, "alpha": 0.5, "steps": 2, "batch_size": 32},
           "quant": {"default": "int8", "calibration_samples": 32}}
    (d / "taylor").mkdir()
    (d / "taylor" / "config.yaml").write_text(yaml.safe_dump(cfg))
    run = autocl("apply", "--config", "taylor/config.yaml", "--workload", "digits", "-o", "rebuilt", cwd=d)
    assert run.returncode == 0, run.stderr
    assert "architecture rebuilt from taylor/config.yaml" in run.stdout and "metric" in run.stdout
    assert (d / "rebuilt" / "model.onnx").is_file()
    bundle = autocl("apply", "--config", "bundle/config.yaml", "--workload", "digits", cwd=d)
    assert bundle.returncode == 0 and "weights: bundle/weights.pt" in bundle.stdout, bundle.stderr
