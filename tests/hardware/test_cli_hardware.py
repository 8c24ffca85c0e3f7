"""`autocl profiles`, `search --profile A --profile B`, `front --profile`, `remeasure`, as a user runs them."""

import json

import onnxruntime as ort
import pytest

from tests.cli.test_cli import SPACE, autocl
from tests.conftest import ROOT

PROFILE = """
name: {name}
threads: 1
batch_size: {batch}
measurement: {{warmup: 2, repeats: 6, min_repeats: 3, max_seconds: 0.5}}
"""


def test_profiles_lists_every_shipped_profile_and_what_runs_here():
    run = autocl("profiles", cwd=ROOT)
    assert run.returncode == 0, run.stderr
    for name in ("cpu-local", "cpu-edge-1t", "cpu-server", "cpu-openvino", "cuda", "remote-device"):
        assert name in run.stdout
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        cuda_row = next(line for line in run.stdout.splitlines() if line.startswith("│ cuda"))
        assert "no [" in cuda_row
        assert any(line.startswith("[") and "cuda:" in line and "CUDAExecutionProvider" in line
                   for line in run.stdout.splitlines())


def test_help_lists_the_hardware_commands():
    run = autocl("--help", cwd=ROOT)
    assert all(c in run.stdout for c in ("profiles", "agent", "remeasure", "compare-targets"))


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    d = tmp_path_factory.mktemp("multi")
    (d / "space.yaml").write_text(SPACE)
    (d / "a.yaml").write_text(PROFILE.format(name="tiny-a", batch=2))
    (d / "b.yaml").write_text(PROFILE.format(name="tiny-b", batch=16))
    db = f"sqlite:///{d / 'multi.db'}"
    run = autocl("search", "--workload", "digits", "--space", "space.yaml", "--profile", "a.yaml", "--profile",
                 "b.yaml", "--study", "mp", "--trials", "2", "--storage", db, cwd=d)
    assert run.returncode == 0, run.stderr
    return d, db, run


def test_a_search_on_two_profiles_prints_and_stores_a_front_for_each(searched):
    d, db, run = searched
    assert "on profile 'tiny-a'" in run.stdout and "on profile 'tiny-b'" in run.stdout
    fronts = {}
    for name in ("tiny-a", "tiny-b"):
        out = autocl("front", "--study", "mp", "--storage", db, "--profile", name, "--format", "json", cwd=d)
        assert out.returncode == 0, out.stderr
        fronts[name] = json.loads(out.stdout)
        assert fronts[name] and all(r["latency_ms"] > 0 and r["remeasured_ms"] for r in fronts[name])
    # batch 16 takes longer than batch 2 for the same artifact
    a = {r["artifact_sha256"]: r["latency_ms"] for r in fronts["tiny-a"]}
    b = {r["artifact_sha256"]: r["latency_ms"] for r in fronts["tiny-b"]}
    assert all(b[k] > a[k] for k in a.keys() & b.keys())
    unknown = autocl("front", "--study", "mp", "--storage", db, "--profile", "nope", cwd=d)
    assert unknown.returncode == 2 and "tiny-a" in unknown.stderr and "tiny-b" in unknown.stderr


def test_remeasure_compares_the_stored_front_with_a_new_measurement(searched):
    d, db, _ = searched
    run = autocl("remeasure", "--study", "mp", "--storage", db, cwd=d)
    assert run.returncode == 0, run.stderr
    assert "re-measured front of 'mp' on profile 'tiny-a'" in run.stdout
    assert "re-measured front of 'mp' on profile 'tiny-b'" in run.stdout
    assert "within the noise" in run.stdout or "changed beyond the noise" in run.stdout
    other = autocl("remeasure", "--study", "mp", "--storage", db, "--profile", str(ROOT / "hardware_profiles" /
                                                                                   "cpu-local.yaml"), cwd=d)
    assert other.returncode == 2 and "not measured on cpu-local" in other.stderr
