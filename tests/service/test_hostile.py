"""Hostile and unlucky requests (issue 20): each is refused with a 4xx and a reason, none answers
5xx, and none leaves a state that breaks later requests (a record on disk that cannot be read back)."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from tests.service.conftest import PROFILE, SPACE, TOKEN, Server

DEEP = "[" * 3000 + "]" * 3000
HOSTILE = [
    ({"space_yaml": 'name: "\ud800"'}, "UTF-8"),  # a lone surrogate in the text itself
    ({"space_yaml": 'name: "\\ud800"'}, "UTF-8"),  # ... or escaped in YAML
    ({"space_yaml": "name: x\nprune: " + DEEP}, "nested more than"),
    ({"profile_yaml": DEEP}, "nested more than"),
    ({"space_yaml": "name: nan\nprune: {ratio: .nan}"}, "prune.ratio"),
    ({"space_yaml": "name: nan\nprune: {ratio: {low: .nan, high: 0.5}}"}, "prune.ratio.low"),
    ({"space_yaml": "name: inf\nquant: {calibration_samples: .inf}"}, "quant.calibration_samples"),
    ({"profile_yaml": PROFILE + "memory_limit_mb: .inf\n"}, "finite"),
    ({"profile": "cpu-local"}, "not both"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("serve-hostile")
    # records left by an older server or a bad disk: none may hide the other jobs
    record = (
        '{"id": "%s", "study": "%s", "workload": "digits", "space": "inline", "space_name": "%s", '
        '"profile": "inline", "profile_name": "p", "trials": 1, "time_budget_s": null, "seed": 0}'
    )
    for job_id, text in (
        ("0123456789ab", record % ("0123456789ab", "ok", "\\ud800")),  # a lone surrogate, as json.dumps wrote it
        ("ba9876543210", "{nope"),
        ("abcdefabcdef", record % ("abcdefabcdef", "../../etc", "s")),
        ("a1b2c3d4e5f6", record % ("a1b2c3d4e5f6", "fine", "s")),  # a good one, listed
    ):
        (home / "service" / "jobs" / job_id).mkdir(parents=True)
        (home / "service" / "jobs" / job_id / "job.json").write_text(text)
    s = Server(home, max_running=0).start()
    yield s
    s.stop()


def job(**overrides) -> dict:
    return {
        "workload": "digits",
        "study": "hostile",
        "space_yaml": SPACE,
        "profile_yaml": PROFILE,
        "trials": 2,
        **overrides,
    }


@pytest.mark.parametrize(("change", "reason"), HOSTILE, ids=[r for _, r in HOSTILE])
def test_hostile_yaml_is_refused_with_a_reason_and_later_requests_still_work(server, change, reason):
    body = json.dumps(job(**change)).encode()  # ensure_ascii: a lone surrogate travels as \ud800
    r = server.client.post("/api/jobs", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert reason in r.json()["detail"] and "Traceback" not in r.text
    assert server.client.get("/api/jobs").status_code == 200
    assert server.client.get("/api/studies").status_code == 200


def test_an_unreadable_job_record_is_skipped_and_said_not_a_500(server):
    r = server.client.get("/api/jobs")
    ids = [j["id"] for j in r.json()]
    assert r.status_code == 200 and "a1b2c3d4e5f6" in ids
    assert not {"0123456789ab", "ba9876543210", "abcdefabcdef"} & set(ids)
    assert "skipping the job record" in server.read_log()
    assert server.client.get("/api/jobs/0123456789ab").status_code == 404


def test_the_page_link_must_carry_the_token_even_with_a_valid_cookie(server):
    with httpx.Client(base_url=server.url) as browser:
        assert browser.get(f"/?token={TOKEN}").status_code == 303
        assert browser.cookies.get("autocl_token") == TOKEN
        r = browser.get("/?token=attacker-chosen-value-0123")
        assert r.status_code == 401 and "set-cookie" not in r.headers
        assert browser.cookies.get("autocl_token") == TOKEN
        assert browser.get("/").status_code == 200


def test_every_response_carries_the_security_headers(server):
    for r in (
        server.client.get("/"),
        server.client.get("/api/jobs"),
        httpx.get(server.url + "/api/jobs"),
        httpx.get(server.url + "/health"),
    ):
        assert r.headers["x-frame-options"] == "DENY", r.url
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_options_names_every_method_of_the_path(server):
    r = server.client.options("/api/jobs")
    assert r.status_code == 204 and set(r.headers["allow"].split(", ")) >= {"GET", "POST", "OPTIONS"}
    assert server.client.options("/api/nowhere").status_code == 404
    assert httpx.options(server.url + "/api/jobs").status_code == 401


def test_the_schema_says_a_space_is_named_or_inline_not_both(server):
    schema = server.client.get("/openapi.json").json()["components"]["schemas"]["JobRequest"]
    rules = [rule["not"]["required"] for rule in schema["allOf"]]
    assert ["space", "space_yaml"] in rules and ["profile", "profile_yaml"] in rules
    ok = server.client.post("/api/jobs", json=job(study="named", space="default", space_yaml=None))
    assert ok.status_code == 201, ok.text


def test_the_queue_is_capped(server, monkeypatch):
    from autocl.service._jobs import MAX_QUEUED

    answers = [server.client.post("/api/jobs", json=job(study=f"queue-{i}")).status_code for i in range(MAX_QUEUED + 1)]
    assert 429 in answers and set(answers) <= {201, 429}
    r = server.client.post("/api/jobs", json=job(study="one-too-many"))
    assert r.status_code == 429 and "queued already" in r.json()["detail"]
    assert server.client.get("/api/jobs").status_code == 200


def test_a_worker_imports_the_servers_autocl_not_a_folder_where_it_runs(tmp_path, monkeypatch):
    from autocl.service._jobs import SAFE_PATH, _worker_env

    started = tmp_path / "started-here"  # where the server was started: a planted autocl/ there
    (started / "autocl").mkdir(parents=True)
    (started / "autocl" / "__init__.py").write_text("raise SystemExit('injected')\n")
    job = tmp_path / "job"
    job.mkdir()
    monkeypatch.chdir(started)
    monkeypatch.setenv("AUTOCL_HOME", "relative-home")
    monkeypatch.setenv("PYTHONPATH", ".")  # a relative entry would have meant the server's folder
    env = _worker_env()
    run = subprocess.run(
        [sys.executable, *SAFE_PATH, "-c", "import autocl, os; print(autocl.__file__)"],
        cwd=job,  # as _launch runs the worker
        env=env,
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    import autocl

    assert run.returncode == 0 and run.stdout.strip() == autocl.__file__, run.stderr
    assert env["AUTOCL_HOME"] == str(started / "relative-home")


def test_serving_beyond_loopback_warns():
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "from autocl.service import serve; import autocl.service as s;"
            "import uvicorn; uvicorn.run = lambda *a, **k: None; serve('0.0.0.0', 1, 'x' * 20)",
        ],
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0 and "warning: listening on 0.0.0.0" in run.stderr, run.stderr


def test_an_interrupted_jobs_progress_counts_no_trial_as_running(monkeypatch, tmp_path):
    import optuna

    from autocl.service._app import _job_view
    from autocl.service._jobs import Job

    monkeypatch.setenv("AUTOCL_HOME", str(tmp_path))
    from autocl.study import make_storage

    study = optuna.create_study(
        study_name="cut",
        storage=make_storage(f"sqlite:///{tmp_path / 'cut.db'}"),
        directions=["maximize", "minimize", "minimize"],
    )
    study.ask()  # the worker was killed while this trial ran: it stays RUNNING in the storage
    base = dict(
        id="0123456789ab",
        study="cut",
        workload="digits",
        space="inline",
        space_name="s",
        profile="inline",
        profile_name="p",
        trials=2,
        time_budget_s=None,
        seed=0,
        trials_before=0,
    )
    gone = _job_view(Job(**base, state="interrupted"))["progress"]
    assert gone["running"] == 0 and gone["interrupted"] == 1
    assert _job_view(Job(**base, state="running"))["progress"]["running"] == 1
