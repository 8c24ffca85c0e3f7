"""The API's front door, against a real server on loopback: the token, and bad input refused with
a 4xx and a reason before anything runs. The server queues jobs but runs none (--max-running 0)."""

from __future__ import annotations

import httpx
import pytest

from tests.service.conftest import PROFILE, SPACE, TOKEN, Server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("serve-api"), max_running=0).start()
    yield s
    s.stop()


def job(**overrides) -> dict:
    return {"workload": "digits", "study": "api-ok", "space_yaml": SPACE, "profile_yaml": PROFILE, "trials": 2,
            **overrides}


def test_health_is_open_and_every_other_route_needs_the_token(server):
    assert httpx.get(server.url + "/health").json()["status"] == "ok"
    for path in ("/api/jobs", "/api/studies", "/openapi.json", "/", "/plotly.min.js", "/api/nowhere"):
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN}):
            r = httpx.get(server.url + path, headers=headers)
            assert r.status_code == 401, (path, headers, r.text)
            assert "token" in r.json()["detail"]
    r = httpx.post(server.url + "/api/jobs", json=job())
    assert r.status_code == 401
    assert server.client.get("/api/jobs").status_code == 200
    assert server.client.get("/openapi.json").json()["paths"]["/api/jobs"]["post"]


def test_the_page_link_sets_a_cookie_and_the_page_loads_nothing_from_the_internet(server):
    with httpx.Client(base_url=server.url) as browser:
        r = browser.get(f"/?token={TOKEN}", follow_redirects=True)
        assert r.status_code == 200 and "<title>autocl</title>" in r.text
        assert "http://" not in r.text and "https://" not in r.text  # every asset from this server
        assert '<script src="/plotly.min.js">' in r.text
        js = browser.get("/plotly.min.js")
        assert js.status_code == 200 and "plotly" in js.text[:2000].lower()
        assert browser.get("/api/options").json()["workloads"]  # the cookie authenticates the page's calls


def test_a_valid_job_is_recorded_with_its_budget(server):
    r = server.client.post("/api/jobs", json=job(study="api-ok", trials=3, time_budget_s=60))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["state"] == "queued" and created["trials"] == 3 and created["time_budget_s"] == 60
    assert created["space"] == "inline" and created["profile_name"] == "tiny-cpu"
    assert server.client.get(f"/api/jobs/{created['id']}").json()["study"] == "api-ok"
    again = server.client.post("/api/jobs", json=job(study="api-ok"))
    assert again.status_code == 409 and "active job" in again.json()["detail"]
    shipped = server.client.post("/api/jobs", json=job(study="api-shipped", space="default", space_yaml=None,
                                                      profile="cpu-local", profile_yaml=None))
    assert shipped.status_code == 201 and shipped.json()["space"] == "default", shipped.text
    stopped = server.client.post(f"/api/jobs/{shipped.json()['id']}/stop").json()
    assert stopped["state"] == "stopped" and "before it started" in stopped["reason"]


BOMB = "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b]\n"
BAD_JOBS = [
    (job(workload="nope"), 422, "unknown workload 'nope'"),
    (job(workload="os:system"), 422, "registered workloads only"),
    (job(workload="autocl.workloads._digits:digits"), 422, "unknown workload"),
    (job(study="../escape"), 422, "study name"),
    (job(study=".hidden"), 422, "not starting with '.'"),
    (job(study="a/b"), 422, "study name"),
    (job(study=""), 422, "study name"),
    (job(space="../../etc/passwd", space_yaml=None), 422, "unknown space"),
    (job(profile="/etc/hosts", profile_yaml=None), 422, "unknown profile"),
    (job(space="default"), 422, "not both"),
    (job(space_yaml="prune: [0.1,\n"), 422, "malformed YAML"),
    (job(space_yaml="prune: {ratio: [0.1, 0.2], speed: 3}\n"), 422, "prune.speed"),
    (job(space_yaml="- just\n- a list\n"), 422, "mapping"),
    (job(space_yaml=BOMB), 422, "anchors and aliases"),
    (job(profile_yaml="name: x\nbatch_size: -3\n"), 422, "batch_size"),
    (job(profile_yaml="name: x\nmeasure: remote\nremote: {url: 'http://evil', token_file: /etc/shadow}\n"), 422,
     "remote profiles"),
    (job(space_yaml="#" * 20_000), 413, "inline YAML"),
    (job(trials=0), 422, "trials"),
    (job(time_budget_s=-5), 422, "time_budget_s"),
    (job(extra="field"), 422, "extra"),
    ({"study": "x"}, 422, "workload"),
]


@pytest.mark.parametrize("body,status,reason", BAD_JOBS, ids=[f"{i}-{r[:20]}" for i, (_, _, r) in enumerate(BAD_JOBS)])
def test_a_bad_job_is_refused_with_the_status_and_a_reason(server, body, status, reason):
    r = server.client.post("/api/jobs", json=body)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and reason in detail, detail
    assert "Traceback" not in detail


def test_oversized_and_malformed_bodies_are_refused(server):
    r = server.client.post("/api/jobs", content=b"{" + b" " * 100_000 + b"}",
                           headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "request body over" in r.json()["detail"]

    def chunks():
        for _ in range(40):
            yield b" " * 4096

    r = server.client.post("/api/jobs", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413  # no Content-Length: counted as it arrives
    r = server.client.post("/api/jobs", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"]


@pytest.mark.parametrize("path,status,reason", [
    ("/api/jobs/0123456789ab", 404, "no job"),
    ("/api/jobs/..%2F..%2Fetc", 404, ""),
    ("/api/jobs/not-a-job-id/stop", 422, "job_id"),
    ("/api/studies/missing", 404, "no study named 'missing'"),
    ("/api/studies/.hidden/front", 422, "study name"),
    ("/api/studies/..%2F..%2Fetc%2Fpasswd/front", 404, ""),
    ("/api/studies/%2E%2E/trials", 422, "study name"),
    ("/api/studies/missing/bundle?trial=0", 404, "no study"),
])
def test_unknown_or_unsafe_names_are_refused(server, path, status, reason):
    method = server.client.post if path.endswith("/stop") else server.client.get
    r = method(path)
    assert r.status_code == status, r.text
    assert reason in r.json()["detail"]
