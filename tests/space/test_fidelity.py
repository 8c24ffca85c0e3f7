"""The fidelity ladder in the space: `distill.fidelity: {rungs, eta}`, refused early when it cannot work."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest

from autocl.errors import ConfigError
from autocl.space import SearchSpace, load_space
from tests.conftest import ROOT


def _write(tmp_path, ladder: str):
    path = tmp_path / "space.yaml"
    path.write_text(f"prune: {{ratio: [0.0, 0.5]}}\ndistill:\n  steps: 8\n  fidelity: {ladder}\n")
    return path


@pytest.mark.parametrize(
    ("ladder", "field", "words"),
    [
        ("{rungs: [80, 40], eta: 3}", "distill.fidelity.rungs", "increasing"),
        ("{rungs: [80, 80], eta: 3}", "distill.fidelity.rungs", "increasing"),
        ("{rungs: [0, 40], eta: 3}", "distill.fidelity.rungs", "positive"),
        ("{rungs: [], eta: 3}", "distill.fidelity.rungs", ""),
        ("{rungs: [80, 320], eta: 1}", "distill.fidelity.eta", "greater than or equal to 2"),
        ("{rungs: [80, 320, 9000], eta: 3}", "distill", "polish cap"),
    ],
)
def test_a_bad_ladder_is_one_error_naming_the_file_and_field(tmp_path, ladder, field, words):
    path = _write(tmp_path, ladder)
    with pytest.raises(ConfigError) as err:
        load_space(path)
    text = str(err.value)
    assert "\n" not in text and str(path) in text and f"'{field}'" in text and words in text


def test_a_ladder_refuses_a_searched_step_count(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("distill:\n  steps: [40, 80]\n  fidelity: {rungs: [80, 320]}\n")
    with pytest.raises(ConfigError, match="rungs set the steps"):
        load_space(path)


def test_a_rung_may_reach_a_raised_cap(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("distill:\n  polish: {max_steps: 10000}\n  fidelity: {rungs: [80, 9000]}\n")
    assert load_space(path).distill.fidelity.rungs == [80, 9000]


def test_the_ladder_sets_each_rung_s_steps_on_one_schedule():
    space = SearchSpace.model_validate({"distill": {"steps": 8, "fidelity": {"rungs": [10, 30, 90]}}})
    assert space.distill.fidelity.eta == 3
    trial = optuna.create_study(directions=["maximize", "minimize"]).ask()
    cfg = space.suggest(trial, ["fc"])
    assert (cfg.distill.steps, cfg.distill.ladder_steps, cfg.distill.early_stop) == (10, 90, False)
    top = space.at_rung(cfg.distill, 2)
    assert (top.steps, top.ladder_steps) == (90, 90)
    with pytest.raises(ConfigError):
        space.at_rung(cfg.distill, 3)


def test_a_space_without_a_ladder_keeps_its_fingerprint_and_student_keys():
    from autocl.config import CompressionConfig

    plain = SearchSpace.model_validate({})
    assert "fidelity" not in plain.model_dump(mode="json")["distill"]
    # a config without a ladder hashes as it did before the field existed
    before = CompressionConfig().model_dump(mode="json")
    before["distill"].pop("ladder_steps")
    import hashlib
    import json

    prune = before["prune"]
    for knob in ("depth", "depth_criterion", "rank_ratio", "layer_rank_ratios"):
        prune.pop(knob)
    record = {"w": "w", "p": prune, "d": before["distill"]}
    assert (
        CompressionConfig().student_key("w")
        == hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]
    )


def test_the_cli_refuses_a_bad_ladder_before_loading_the_workload(tmp_path):
    path = _write(tmp_path, "{rungs: [320, 80]}")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "autocl",
            "search",
            "--workload",
            "no_such_module:nothing",
            "--space",
            str(path),
            "--storage",
            f"sqlite:///{tmp_path / 's.db'}",
            "--trials",
            "1",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert out.returncode == 2
    text = out.stdout + out.stderr
    assert "distill.fidelity.rungs" in text and "no_such_module" not in text.replace(str(path), "")
    assert "Traceback" not in text
