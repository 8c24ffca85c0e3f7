"""The command line as a user runs it: a real process, real files, exit codes and messages."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SPACE = """
name: tiny
prune: {ratio: [0.0, 0.5]}
distill: {temperature: [2.0, 4.0], alpha: 0.5, steps: 8, batch_size: 32, polish: {epochs: 0.2}}
quant: {precisions: [fp32, fp16, int8], calibration_samples: 32}
"""
PROFILE = """
name: tiny-cpu
threads: 1
batch_size: 4
measurement: {warmup: 2, repeats: 5, min_repeats: 3, max_seconds: 0.5}
"""


def autocl(*args, cwd):
    return subprocess.run([sys.executable, "-m", "autocl", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(ROOT)}, timeout=600)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "space.yaml").write_text(SPACE)
    (d / "profile.yaml").write_text(PROFILE)
    return d


def test_search_then_front_as_json(files):
    db = f"sqlite:///{files / 'cli.db'}"
    run = autocl("search", "--workload", "digits", "--space", "space.yaml", "--profile", "profile.yaml",
                 "--study", "cli", "--trials", "2", "--storage", db, cwd=files)
    assert run.returncode == 0, run.stderr
    assert "Pareto front of 'cli'" in run.stdout and "accuracy" in run.stdout
    # the CPU profile leaves fp16 out, and says so in one line naming the profile and why
    said = [line for line in run.stdout.splitlines() if "space narrowed" in line]
    assert len(said) == 1 and "removed fp16" in said[0] and "tiny-cpu" in said[0] and "float16" in said[0], said
    front = autocl("front", "--study", "cli", "--storage", db, "--format", "json", cwd=files)
    assert front.returncode == 0, front.stderr
    rows = json.loads(front.stdout)
    assert rows and all(r["latency_ms"] > 0 and 0 <= r["metric"] <= 1 for r in rows)


def test_a_malformed_profile_is_one_clear_line_and_exit_2(files):
    (files / "bad.yaml").write_text("name: bad\nbatch_size: -3\n")
    run = autocl("search", "--workload", "digits", "--space", "space.yaml", "--profile", "bad.yaml",
                 "--study", "x", "--trials", "1", cwd=files)
    assert run.returncode == 2
    assert "bad.yaml" in run.stderr and "batch_size" in run.stderr and "Traceback" not in run.stderr


def test_an_unknown_study_lists_the_ones_that_exist(files):
    db = f"sqlite:///{files / 'cli.db'}"
    run = autocl("front", "--study", "nope", "--storage", db, cwd=files)
    assert run.returncode == 2 and "no study named 'nope'" in run.stderr and "Traceback" not in run.stderr


def test_unknown_workload_says_what_is_accepted(files):
    run = autocl("layers", "--workload", "resnet9000", cwd=files)
    assert run.returncode == 2 and "mnist" in run.stderr and "package.module:function" in run.stderr


def test_layers_lists_the_names_a_space_uses(files):
    run = autocl("layers", "--workload", "digits", cwd=files)
    assert run.returncode == 0 and "stages.0.conv1" in run.stdout and "fc" in run.stdout


def test_help_teaches_the_commands():
    run = autocl("--help", cwd=ROOT)
    assert run.returncode == 0 and all(c in run.stdout for c in ("search", "front", "layers"))
