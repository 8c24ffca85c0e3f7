"""The peer client of ``benchmarks/compare_baselines.py`` (``benchmarks/peers/client.py``), with a fake peer.

No peer venv is needed: the peer's "python" is a tiny shell script that runs ``FAKE_PEER`` with this
interpreter. The fake records what it was given (paths, whether they exist from its working directory)
and behaves as told by ``FAKE_PEER_MODE``: succeed, crash, hang, or fail the way a peer reports failure.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "peers"))

import client  # noqa: E402

FAKE_PEER = r"""
import json, os, shutil, sys, time
argv = sys.argv[2:]  # argv[1] is run_peer.py
opt = {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i].startswith("--")}
mode = os.environ.get("FAKE_PEER_MODE", "ok")
if mode == "crash":
    print("Traceback (most recent call last):\nImportError: no module named olive", file=sys.stderr)
    sys.exit(1)
if mode == "hang":
    time.sleep(60)
if mode == "refuse":
    print(json.dumps({"tool": opt["--tool"], "error": "no config within tolerable_loss"}))
    sys.exit(1)
if "--check" in argv:
    print(json.dumps({"tool": opt["--tool"], "version": "fake 1.0"}))
    sys.exit(0)
model, out = opt["--model"], opt["--out"]
seen = {"model": model, "model_exists": os.path.isfile(model), "out": out, "cwd": os.getcwd(),
        "calib_exists": os.path.isfile(opt["--calib"])}
if seen["model_exists"]:
    shutil.copyfile(model, out)
print("some log line")
print(json.dumps({"tool": opt["--tool"], "version": "fake 1.0", "seen": seen}))
"""


@pytest.fixture
def fake_venv(tmp_path, monkeypatch):
    """A peer venv whose ``bin/python`` runs the fake peer with this interpreter."""
    script = tmp_path / "fake_peer.py"
    script.write_text(FAKE_PEER)
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}" "$@"\n')
    python.chmod(0o755)
    monkeypatch.setattr(client, "VENVS", {"inc": tmp_path / "venv", "olive": tmp_path / "none"})
    return tmp_path


def _run(tool: str, model, out, timeout_s: int = 30) -> dict:
    calib = {"input": np.zeros((2, 3), np.float32)}
    return client.run_peer(tool, model, calib, calib, np.zeros(2), "accuracy", 0.01, out, timeout_s)


def test_a_relative_model_path_reaches_the_peer_as_a_path_that_exists(fake_venv, monkeypatch):
    project = fake_venv / "project"
    (project / "studies" / "cache").mkdir(parents=True)
    (project / "studies" / "cache" / "baseline.onnx").write_bytes(b"onnx")
    monkeypatch.chdir(project)  # as a benchmark run from the project root without AUTOCL_HOME
    result = _run("inc", Path("studies/cache/baseline.onnx"), Path("work/inc.onnx"))
    seen = result["seen"]
    assert Path(seen["model"]).is_absolute() and seen["model_exists"], result
    assert seen["cwd"] != str(project)  # the peer really runs elsewhere
    assert seen["calib_exists"]
    assert Path(seen["out"]) == project / "work" / "inc.onnx"
    assert (project / "work" / "inc.onnx").read_bytes() == b"onnx"


def test_a_model_that_does_not_exist_is_an_error_before_the_peer_starts(fake_venv, monkeypatch):
    monkeypatch.chdir(fake_venv)
    result = _run("inc", Path("nowhere/baseline.onnx"), Path("inc.onnx"))
    assert "does not exist" in result["error"] and str(fake_venv / "nowhere") in result["error"]


@pytest.mark.parametrize(
    ("mode", "timeout", "expected"),
    [
        ("crash", 30, "exit status 1: ImportError: no module named olive"),
        ("hang", 1, "timed out after 1 s"),
        ("refuse", 30, "no config within tolerable_loss"),
    ],
)
def test_a_peer_that_cannot_run_says_why(fake_venv, monkeypatch, mode, timeout, expected):
    model = fake_venv / "m.onnx"
    model.write_bytes(b"onnx")
    monkeypatch.setenv("FAKE_PEER_MODE", mode)
    assert _run("inc", model, fake_venv / "out.onnx", timeout)["error"] == expected


def test_the_dry_run_reports_the_version_or_the_missing_venv(fake_venv):
    assert client.check_peer("inc") == {"tool": "inc", "version": "fake 1.0"}
    missing = client.check_peer("olive")
    assert "not found: run `make peer-venv`" in missing["error"]
    assert "unknown peer tool" in client.check_peer("openvino")["error"]


def test_the_peer_runs_without_the_main_environments_pythonpath(fake_venv, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    monkeypatch.setattr(client, "RUN_PEER", Path(os.devnull))
    probe = fake_venv / "venv" / "bin" / "python"
    probe.write_text('#!/bin/sh\necho "{\\"tool\\": \\"inc\\", \\"version\\": \\"$PYTHONPATH|$OMP_NUM_THREADS\\"}"\n')
    assert client.check_peer("inc")["version"] == "|1"


def test_a_json_line_from_a_crashed_peer_is_not_taken_for_a_result():
    out = json.dumps({"tool": "inc", "version": "1"})
    assert "error" in client.parse_result("inc", -9, out, "Killed")


# ---- compare_baselines: a peer that cannot run stops the benchmark unless allowed to be missing ----

sys.path.insert(0, str(ROOT / "benchmarks"))


def test_a_missing_peer_stops_the_benchmark_with_the_reason(fake_venv, capsys):
    from _peer_rows import PeerMissing, check_peers

    with pytest.raises(PeerMissing) as stopped:
        check_peers(["inc", "olive"], allowed=set())
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "peer olive cannot run" in err and "make peer-venv" in err and "--allow-missing-peer olive" in err


def test_an_allowed_missing_peer_is_recorded_and_the_ratio_left_empty(fake_venv):
    from _peer_rows import check_peers, versions
    from compare_baselines import _markdown

    checked = check_peers(["inc", "olive"], allowed={"olive"})
    assert checked["inc"] == {"tool": "inc", "version": "fake 1.0"} and "error" in checked["olive"]
    assert versions(checked)["olive"].startswith("missing: ")
    row = {
        "metric": 0.98,
        "metric_drop": 0.0,
        "latency_ms": 1.0,
        "latency_iqr_ms": 0.1,
        "speedup": 1.0,
        "file_kb": 10.0,
        "shipped_kb": 8.0,
        "seconds": None,
    }
    result = {
        "workload": "mnist",
        "profile": "cpu-edge-1t",
        "metric": "accuracy",
        "max_drop": 0.01,
        "rows": {"fp32": row, "autocl trial 3": {**row, "speedup": 2.0}},
        "autocl_row": "autocl trial 3",
        "missing_peers": {"olive": checked["olive"]["error"]},
        "autocl_vs_best_other": None,
        "best_other": None,
        "first_beating_every_recipe": None,
        "best_byhand_before_search": 1.0,
        "autocl_config": {},
        "autocl_trial": 3,
        "trials": 4,
        "complete": 4,
        "recipes_in_search": 1,
        "polished": 0,
        "search_seconds": 60.0,
        "autocl_bits": "int8",
        "autocl_polish_of": None,
        "peers": checked,
    }
    run = {
        "command": "python benchmarks/compare_baselines.py",
        "device": {"cpu": "a CPU", "cores": 2},
        "load": [1.0],
        "date": "today",
        "git": {"commit": "0123456789abcdef", "clean": True},
        "result": result,
    }
    text = _markdown([run])
    table = text.index("| model |")
    assert text.index("**Missing peer: olive**") < table
    assert "autocl / best other = empty (a peer is missing)" in text
    assert "commit 0123456789" in text


def test_a_peer_that_fails_its_tuning_stops_the_benchmark_unless_allowed(fake_venv, monkeypatch):
    from types import SimpleNamespace

    from _peer_rows import PeerMissing, run_peers

    model = fake_venv / "fp32.onnx"
    model.write_bytes(b"onnx")
    w = SimpleNamespace(
        name="tiny",
        input_names=["input"],
        output_kind="logits",
        model=object(),
        validation=(np.zeros((4, 3), np.float32), np.zeros(4)),
    )
    feeds = [{"input": np.zeros((2, 3), np.float32)}]
    args = SimpleNamespace(peers=["inc"], allow_missing_peer=[], max_drop=0.01, peer_trials=3, peer_timeout=30)
    checked = {"inc": {"tool": "inc", "version": "fake 1.0"}}
    ran = run_peers(w, model, feeds, 0.9, args, fake_venv / "work", checked, 1)
    assert ran["inc"]["path"] == str(fake_venv / "work" / "tiny-inc.onnx")
    assert (fake_venv / "work" / "tiny-inc.onnx").is_file()
    monkeypatch.setenv("FAKE_PEER_MODE", "refuse")
    with pytest.raises(PeerMissing):
        run_peers(w, model, feeds, 0.9, args, fake_venv / "work", checked, 1)
    args.allow_missing_peer = ["inc"]
    assert run_peers(w, model, feeds, 0.9, args, fake_venv / "work", checked, 1)["inc"] == {
        "tool": "inc",
        "error": "no config within tolerable_loss",
    }
