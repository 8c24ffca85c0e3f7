"""Processes opening one new SQLite study at the same moment all proceed (issue 20, item 7): the
creation of Optuna's tables is serialized, so none dies of "UNIQUE constraint failed:
alembic_version.version_num" or "table studies already exists"."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.conftest import ROOT

OPEN_AT = """
import sys, time
from autocl.study import open_study
print("ready", flush=True)
for line in sys.stdin:  # one attempt a line: a new database, and the moment all three open it
    url, start = line.split()
    while time.time() < float(start):
        time.sleep(0.001)
    try:
        open_study("race", url, {"workload": "w"}, higher_is_better=True)
        print("result: ok", flush=True)
    except Exception as exc:
        print("result:", f"{type(exc).__name__}: {exc}".replace("\\n", " "), flush=True)
"""


def _result(proc: subprocess.Popen) -> str:
    """The next result line of ``proc`` (Optuna logs its own lines in between)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("result: "):
            return line.removeprefix("result: ").strip()
    return "exited without a result"


def test_three_processes_open_a_new_sqlite_study_at_once_and_all_proceed(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    # three interpreters, each importing autocl once; three attempts, each on a new database
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AT], env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdin is not None
            ready = p.stdout.readline()
            assert ready == "ready\n", ready + p.stdout.read()[-2000:]  # an import failed: say why
        for attempt in range(3):
            url = f"sqlite:///{tmp_path / f'race{attempt}.db'}"
            start = time.time() + 0.2  # the same moment for all three
            for p in procs:
                p.stdin.write(f"{url} {start}\n")
                p.stdin.flush()
            outs = [_result(p) for p in procs]
            assert outs == ["ok"] * 3, (attempt, outs)
    finally:
        for p in procs:
            p.stdin.close()
            p.wait(timeout=60)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["race0.db", "race1.db", "race2.db"]  # no lock file left


def test_the_sensitivity_pass_survives_another_worker_deleting_its_artifacts(tmp_path, monkeypatch, fast_space):
    """Two first runs on one new study run the pre-pass side by side on one cache, and each deletes
    the single-layer artifacts it is done with: neither may lose the file it is evaluating."""
    from types import SimpleNamespace

    import autocl.study._sensitivity as sens

    calls = {"artifact": 0}

    def artifact(cfg, **_):
        calls["artifact"] += 1
        if calls["artifact"] == 2:
            raise FileNotFoundError("deleted by the other worker while its sha256 was read")
        path = tmp_path / f"{len(cfg.quant.layers)}-{sorted(cfg.quant.layers.items())}.onnx"
        path.write_bytes(b"model")
        return SimpleNamespace(path=path)

    def evaluate(path, workload, profile, limit):
        for cached in tmp_path.glob("*].onnx"):
            cached.unlink()  # the other worker is done with it
        assert path.read_bytes() == b"model"  # still readable: this process's own link
        return 0.9

    monkeypatch.setattr(sens, "evaluate_artifact", evaluate)
    compressor = SimpleNamespace(workload=SimpleNamespace(higher_is_better=True), layers=["a", "b"], artifact=artifact)
    table = sens.sensitivity_table(compressor, fast_space, None)
    assert table == {"a": {"int8": 0.0}, "b": {"int8": 0.0}}
    assert not list(tmp_path.iterdir())  # no private link left behind
