"""schemathesis fuzzes the API from its own OpenAPI document, against a real server, and finds no
5xx and no undocumented status. The server records jobs but runs none (--max-running 0)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.service.conftest import TOKEN, Server

MAX_EXAMPLES = 8  # per operation and phase: the whole run stays well under a minute on 2 cores


@pytest.mark.skipif(importlib.util.find_spec("schemathesis") is None,
                    reason="schemathesis is not installed (it is in the dev extra: run `make install`)")
def test_schemathesis_finds_no_server_error(tmp_path):
    from tests.service.fuzz_hooks import HOSTILE_YAML

    server = Server(tmp_path, max_running=0).start()
    try:
        run = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json",
             "--header", f"Authorization: Bearer {TOKEN}", "--checks", "not_a_server_error,status_code_conformance",
             "--max-examples", str(MAX_EXAMPLES), "--seed", "1", "--no-color", "--workers", "1",
             "--phases", "examples,coverage,fuzzing,stateful"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
            env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.service.fuzz_hooks", "PYTHONPATH": str(ROOT)})
    finally:
        server.stop()
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:] + server.read_log()[-3000:]
    assert "generated" in run.stdout  # it did run cases
    assert "Stateful" in run.stdout, run.stdout[-3000:]  # and followed the links from a created job
    jobs = [p.parent for p in (tmp_path / "service" / "jobs").glob("*/job.json")]
    assert "fuzz-valid" in {json.loads((d / "job.json").read_text())["study"] for d in jobs}
    stored = {(d / "space.yaml").read_text() for d in jobs} | {(d / "profile.yaml").read_text() for d in jobs}
    assert not stored & set(HOSTILE_YAML.values())  # every hostile example was refused
    assert "Internal Server Error" not in server.read_log()
