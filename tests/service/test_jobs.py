"""Jobs end to end against real servers on loopback: a small `digits` search runs to completion in a
worker, its front is what `autocl front --format json` prints, its bundle downloads as a verified
zip, and restarting the server loses neither the job's record nor the study; a job the server was
running when it stopped is marked interrupted with the reason, and resumes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile

from tests.conftest import ROOT
from tests.service.conftest import PROFILE, SPACE

FINAL = ("done", "failed", "stopped", "interrupted")


def submit(server, study: str, trials: int, **extra) -> dict:
    r = server.client.post("/api/jobs", json={"workload": "digits", "study": study, "space_yaml": SPACE,
                                               "profile_yaml": PROFILE, "trials": trials, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def cli_front(home, study: str) -> list[dict]:
    run = subprocess.run([sys.executable, "-m", "autocl", "front", "--study", study, "--format", "json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120,
                         env={**os.environ, "AUTOCL_HOME": str(home), "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_a_digits_job_runs_to_completion_and_a_restart_keeps_it(autocl_home, start_server):
    server = start_server(autocl_home)
    job = submit(server, "svc-digits", trials=2)
    done = server.wait_job(job["id"], lambda j: j["state"] in FINAL)
    assert done["state"] == "done", done
    p = done["progress"]
    assert p["complete"] - p["polished"] + p["failed"] == 2  # polishing runs come on top of the budget
    assert done["progress"]["complete"] >= 1 and done["progress"]["front_size"] >= 1
    assert 0 < done["progress"]["best_metric"] <= 1 and done["progress"]["fastest_latency_ms"] > 0
    assert any("trial" in line for line in done["log_tail"])

    front = server.client.get("/api/studies/svc-digits/front").json()
    assert front == cli_front(autocl_home, "svc-digits")  # the same numbers, from the same code
    trials = server.client.get("/api/studies/svc-digits/trials").json()
    finished = [t for t in trials if t["status"] != "pending"]  # recipes enqueued beyond the budget wait
    assert len(finished) == 2 + p["polished"]
    assert {t["status"] for t in finished} <= {"front", "dominated", "failed"}
    figures = server.client.get("/api/studies/svc-digits/figures").json()
    latency = figures["figures"]["pareto-latency"]
    assert figures["profile"] == "tiny-cpu" and latency["layout"]["title"]["text"] == "accuracy vs latency ms"
    front_trace = next(t for t in latency["data"] if t["name"] == "Pareto front (feasible)")
    assert sorted(front_trace["x"]) == sorted(r["latency_ms"] for r in front)

    member = front[0]["trial"]
    # the tolerance of 'autocl export --latency-tolerance': a tiny model's latency on a busy test machine
    bundle = server.client.get("/api/studies/svc-digits/bundle", params={"trial": member, "latency_tolerance": 100})
    assert bundle.status_code == 200, bundle.text
    assert bundle.headers["content-type"] == "application/zip"
    names = set(zipfile.ZipFile(io.BytesIO(bundle.content)).namelist())
    prefix = f"svc-digits-trial-{member}/"
    assert {prefix + f for f in ("model.onnx", "weights.pt", "config.yaml", "MODEL_CARD.md", "export.json")} <= names
    facts = json.loads(zipfile.ZipFile(io.BytesIO(bundle.content)).read(prefix + "export.json"))
    assert facts["study"] == "svc-digits" and facts["trial"] == member and facts["metric"] == front[0]["metric"]
    missing = server.client.get("/api/studies/svc-digits/bundle", params={"trial": 99})
    assert missing.status_code == 404 and "no trial 99" in missing.json()["detail"]
    exports = autocl_home / "service" / "exports"
    deadline = time.monotonic() + 10
    while list(exports.glob("*")) and time.monotonic() < deadline:  # removed once the response is sent
        time.sleep(0.2)
    assert not list(exports.glob("*"))

    server.stop()
    again = start_server(autocl_home)
    kept = again.client.get(f"/api/jobs/{job['id']}").json()
    assert kept["state"] == "done" and kept["progress"] == done["progress"] and kept["reason"] == done["reason"]
    assert "svc-digits" in [s["name"] for s in again.client.get("/api/studies").json()]
    assert again.client.get("/api/studies/svc-digits/front").json() == front


def test_a_job_running_when_the_server_stops_is_interrupted_with_the_reason_and_resumes(autocl_home, start_server):
    server = start_server(autocl_home)
    job = submit(server, "svc-resume", trials=2)
    server.wait_job(job["id"], lambda j: j["progress"]["complete"] >= 1 or j["state"] in FINAL)
    server.stop()  # SIGTERM while trials remain

    again = start_server(autocl_home)
    kept = again.client.get(f"/api/jobs/{job['id']}").json()
    assert kept["state"] in ("interrupted", "done"), kept
    if kept["state"] == "interrupted":  # the usual case: the second trial had not finished
        assert "server shut down" in kept["reason"] and "resume" in kept["reason"]
        resumed = again.client.post(f"/api/jobs/{job['id']}/resume")
        assert resumed.status_code == 200 and resumed.json()["state"] == "queued"
        kept = again.wait_job(job["id"], lambda j: j["state"] in FINAL)
        # a second run, or none when both trials had finished before the shutdown cut the run's end
        assert kept["state"] == "done" and (kept["runs"] == 2 or "used up" in kept["reason"]), kept
    progress = kept["progress"]
    assert progress["complete"] - progress["polished"] + progress["failed"] == 2 and progress["complete"] >= 1, kept
    assert again.client.post(f"/api/jobs/{job['id']}/resume").status_code == 409  # nothing left to resume


def test_a_time_budget_ends_a_job_and_a_stop_keeps_its_trials(autocl_home, start_server):
    server = start_server(autocl_home)
    timed = submit(server, "svc-budget", trials=None, time_budget_s=4)
    assert timed["trials"] is None and timed["time_budget_s"] == 4
    over = server.wait_job(timed["id"], lambda j: j["state"] in FINAL, timeout=180)
    assert over["state"] == "done" and over["reason"], over  # the deadline ends it as a finished job

    job = submit(server, "svc-stop", trials=None, time_budget_s=3600)
    server.wait_job(job["id"], lambda j: j["progress"]["complete"] >= 1)
    stopping = server.client.post(f"/api/jobs/{job['id']}/stop").json()
    assert stopping["stopping"] and stopping["state"] == "running"
    stopped = server.wait_job(job["id"], lambda j: j["state"] in FINAL, timeout=120)
    assert stopped["state"] == "stopped" and "saved" in stopped["reason"], stopped
    assert stopped["progress"]["complete"] >= 1
    assert server.client.post(f"/api/jobs/{job['id']}/stop").status_code == 409
