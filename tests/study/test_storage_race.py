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
start = float(sys.stdin.readline())  # sent once every interpreter has imported autocl
while time.time() < start:
    time.sleep(0.001)
try:
    open_study("race", sys.argv[1], {"workload": "w"}, higher_is_better=True)
    print("ok")
except Exception as exc:
    print(f"{type(exc).__name__}: {exc}")
"""


def test_three_processes_open_a_new_sqlite_study_at_once_and_all_proceed(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for attempt in range(3):
        url = f"sqlite:///{tmp_path / f'race{attempt}.db'}"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN_AT, url],
                env=env,
                text=True,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for _ in range(3)
        ]
        for p in procs:  # a failed import says why in the outputs below
            assert p.stdout is not None and p.stdin is not None
            p.stdout.readline()
        start = time.time() + 0.2  # the same moment for all three
        outs = [p.communicate(f"{start}\n", timeout=180)[0].strip().splitlines()[-1:] for p in procs]
        assert all(out == ["ok"] for out in outs), outs
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
