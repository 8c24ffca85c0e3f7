"""Targets a user runs from the command line: `autocl compare-targets` on a study searched on two
runtimes, and profiles whose execution provider is not installed here (one line, exit 2)."""

from __future__ import annotations

import json

import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from autocl.cli import app
from autocl.study import run_search

from tests.cli.test_cli import SPACE, autocl
from tests.conftest import ROOT
from tests.study.test_cross_target import two_runtimes

QNN = """
# a target a user adds in one file: Qualcomm's NPU through onnxruntime's QNN execution provider
name: my-npu
execution_provider: QNNExecutionProvider
provider_options: {backend_path: libQnnHtp.so}
threads: 1
batch_size: 1
"""


@pytest.fixture(scope="module")
def study_url(digits, fast_space, tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'targets.db'}"
    run_search(digits, fast_space, two_runtimes(), study_name="targets", storage=url, n_trials=3)
    return url


def test_compare_targets_prints_each_winner_on_every_target_with_the_regret(study_url):
    result = CliRunner().invoke(app, ["compare-targets", "--study", "targets", "--storage", study_url])
    assert result.exit_code == 0, result.output
    assert "cross-target regret of 'targets'" in result.output and "measured" in result.output
    assert "on ort" in result.output and "on ov" in result.output and "load average" in result.output
    data = CliRunner().invoke(app, ["compare-targets", "--study", "targets", "--storage", study_url, "--recorded",
                                    "--format", "json"])
    assert data.exit_code == 0, data.output
    table = json.loads(data.output)
    assert table["how"] == "recorded" and set(table["winners"]) == {"ort", "ov"}
    for t in ("ort", "ov"):
        assert table["regret"][t][t] == 0
        other = "ov" if t == "ort" else "ort"
        assert table["regret"][t][other] == pytest.approx(1 - table["speedups"][t][other] / table["speedups"][t][t])


def test_compare_targets_refuses_a_bad_format_and_a_missing_study(study_url):
    bad = CliRunner().invoke(app, ["compare-targets", "--study", "targets", "--storage", study_url, "--format", "x"])
    assert bad.exit_code == 2 and "--format" in bad.output and "Traceback" not in bad.output
    missing = CliRunner().invoke(app, ["compare-targets", "--study", "never-searched"])
    assert missing.exit_code == 2 and "no study database" in missing.output


def _one_line_exit_2(run, *words):
    assert run.returncode == 2, (run.stdout, run.stderr)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert all(w in lines[0] for w in words), lines[0]


def test_a_profile_for_a_provider_not_installed_is_refused_in_one_line(tmp_path):
    (tmp_path / "space.yaml").write_text(SPACE)
    (tmp_path / "npu.yaml").write_text(QNN)
    run = autocl("search", "--workload", "digits", "--space", "space.yaml", "--profile", "npu.yaml", "--study", "npu",
                 "--trials", "1", cwd=tmp_path)
    _one_line_exit_2(run, "npu.yaml", "execution_provider", "QNNExecutionProvider", "CPUExecutionProvider")
    listed = autocl("profiles", "--dir", str(tmp_path), cwd=tmp_path)
    assert listed.returncode == 0 and "my-npu" in listed.stdout and "QNNExecutionProvider" in listed.stdout


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="CUDA is installed here")
def test_the_cuda_profile_without_onnxruntime_gpu_is_refused_in_one_line(tmp_path):
    (tmp_path / "space.yaml").write_text(SPACE)
    run = autocl("search", "--workload", "digits", "--space", "space.yaml", "--profile",
                 str(ROOT / "hardware_profiles" / "cuda.yaml"), "--study", "gpu", "--trials", "1", cwd=tmp_path)
    _one_line_exit_2(run, "cuda.yaml", "CUDAExecutionProvider", "onnxruntime")
