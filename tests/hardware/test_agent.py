"""The latency agent as a real process on loopback: good, unauthorized, oversized and malformed
requests, and that it keeps serving after each."""

import http.client
import json
import os
import subprocess
import sys
import urllib.request
from urllib.parse import urlparse

import pytest

from autocl.errors import ProfileError
from autocl.hardware import measure_many, profile_from_dict

from tests.conftest import ROOT
from tests.hardware.conftest import feed_for, matmul_model

TOKEN = "test-token-0123456789abcdef"
LIMIT_MB = 4


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    d = tmp_path_factory.mktemp("agent")
    (d / "token").write_text(TOKEN + "\n")
    scratch = d / "scratch"
    proc = subprocess.Popen(
        [sys.executable, "-m", "autocl", "agent", "--host", "127.0.0.1", "--port", "0", "--token-file",
         str(d / "token"), "--max-upload-mb", str(LIMIT_MB), "--scratch", str(scratch), "--idle-exit", "300",
         "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "AUTOCL_LEASE_DIR": str(d / "leases")})
    try:
        line = proc.stdout.readline()  # the agent prints its address once it listens
        assert "listening on http://127.0.0.1:" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
        url = line.split("listening on ")[1].split()[0]
        yield {"url": url, "scratch": scratch, "proc": proc, "dir": d}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def remote_profile(agent, **kw):
    return profile_from_dict({
        "name": "remote-test", "measure": "remote", "batch_size": 4,
        "remote": {"url": agent["url"], "token_file": str(agent["dir"] / "token"), "timeout_s": 60},
        "measurement": {"warmup": 2, "repeats": 20, "min_repeats": 5, "max_seconds": 2, "memory": False}, **kw})


def post(agent, body: bytes, token: str | None = TOKEN, length: int | None = None):
    u = urlparse(agent["url"])
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body) if length is None else length)}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    conn.request("POST", "/measure", body=body, headers=headers)
    resp = conn.getresponse()
    payload = json.loads(resp.read() or b"{}")
    conn.close()
    return resp.status, payload


def healthy(agent) -> bool:
    with urllib.request.urlopen(agent["url"] + "/health", timeout=10) as r:
        return json.loads(r.read())["ok"] is True


def get(agent, path: str, token: str | None = TOKEN):
    u = urlparse(agent["url"])
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
    resp = conn.getresponse()
    payload = json.loads(resp.read() or b"{}")
    conn.close()
    return resp.status, payload


def test_get_device_describes_the_device_to_a_client_with_the_token(agent):
    import onnxruntime

    import autocl
    from autocl.hardware import cpu_info

    status, device = get(agent, "/device")
    assert status == 200, device
    assert device["onnxruntime"] == onnxruntime.__version__ and device["autocl"] == autocl.__version__
    assert device["cpu"] == cpu_info()[0] and "CPUExecutionProvider" in device["providers"]
    assert isinstance(device["cpu_flags"], list)
    for token, refused in ((None, 401), ("wrong-token-0123456789", 403)):
        status, answer = get(agent, "/device", token)
        assert status == refused and "cpu" not in answer and answer.get("error"), answer
    assert healthy(agent)


def test_a_good_request_is_measured_on_the_agent_with_its_device(agent, tmp_path):
    small = matmul_model(tmp_path / "small.onnx", 256)
    large = matmul_model(tmp_path / "large.onnx", 256, layers=8)
    fast, slow = measure_many([small, large], remote_profile(agent), feed_for(), memory=[True, False])
    assert fast.agent == agent["url"] and fast.profile == "remote-test" and fast.interleaved == 2
    assert slow.median_ms > 2 * fast.median_ms and len(fast.samples_ms) == len(slow.samples_ms) >= 5
    assert fast.device["key"] and fast.device["onnxruntime"] and fast.device["execution_provider"] == "CPUExecutionProvider"
    assert fast.memory and fast.memory["peak_mb"] > 0 and slow.memory is None
    assert list(agent["scratch"].iterdir()) == []  # artifacts are kept only for the request


def test_missing_or_wrong_tokens_are_refused(agent):
    status, payload = post(agent, b"{}", token=None)
    assert status == 401 and "token" in payload["error"]
    status, payload = post(agent, b"{}", token="not-the-token-at-all")
    assert status == 403 and "wrong token" in payload["error"]
    with pytest.raises(ProfileError, match="403"):
        bad = remote_profile(agent)
        (agent["dir"] / "other").write_text("not-the-token-at-all")
        bad = bad.model_copy(update={"remote": bad.remote.model_copy(update={"token_file": str(agent["dir"] / "other")})})
        measure_many([matmul_model(agent["dir"] / "m.onnx", 8)], bad, feed_for(8))
    assert healthy(agent)


def test_an_oversized_upload_is_refused_with_413(agent):
    too_big = int(LIMIT_MB * 2**20) + 1
    status, payload = post(agent, b"x" * too_big)
    assert status == 413 and "limit" in payload["error"]
    status, payload = post(agent, b"", length=50 * 2**20)  # announced, never sent: refused before reading
    assert status == 413
    big = matmul_model(agent["dir"] / "big.onnx", 256, layers=16)  # 4 MB of weights, more once encoded
    with pytest.raises(ProfileError, match="413.*over this agent's limit"):
        measure_many([big], remote_profile(agent), feed_for())
    assert healthy(agent)


@pytest.mark.parametrize("body, reason", [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (json.dumps({"profile": {"name": "p", "threads": "many"}, "artifacts": [], "feed": {}}).encode(), "threads"),
    (json.dumps({"profile": {"name": "p"}, "artifacts": [{"data": "%%%"}], "feed": {}}).encode(), "base64"),
    (json.dumps({"profile": {"name": "p"}, "artifacts": [{"data": "AAAA"}],
                 "feed": {"x": {"dtype": "float32", "shape": [4, 4], "data": "AAAA"}}}).encode(), "bytes"),
])
def test_malformed_bodies_get_400_with_the_reason(agent, body, reason):
    status, payload = post(agent, body)
    assert status == 400 and reason in payload["error"]


def test_requests_the_device_cannot_run_get_422_and_it_keeps_serving(agent, tmp_path):
    import base64

    feed = {"x": {"dtype": "float32", "shape": [1], "data": base64.b64encode(b"\0" * 4).decode()}}
    garbage = {"profile": {"name": "p"}, "artifacts": [{"data": base64.b64encode(b"not onnx").decode()}], "feed": feed}
    status, payload = post(agent, json.dumps(garbage).encode())
    assert status == 422 and "onnxruntime" in payload["error"]
    gpu = {**garbage, "profile": {"name": "p", "execution_provider": "NoSuchExecutionProvider"}}
    status, payload = post(agent, json.dumps(gpu).encode())
    assert status == 422 and "NoSuchExecutionProvider" in payload["error"]
    assert agent["proc"].poll() is None and healthy(agent)
    m = measure_many([matmul_model(tmp_path / "m.onnx", 256)], remote_profile(agent), feed_for(), memory=False)[0]
    assert m.median_ms > 0
    assert list(agent["scratch"].iterdir()) == []


def test_an_unreachable_agent_is_a_clear_profile_error(tmp_path):
    (tmp_path / "t").write_text(TOKEN)
    p = profile_from_dict({"name": "r", "measure": "remote", "batch_size": 4,
                           "remote": {"url": "http://127.0.0.1:9", "token_file": str(tmp_path / "t"), "timeout_s": 5}})
    with pytest.raises(ProfileError, match="did not answer"):
        measure_many([matmul_model(tmp_path / "m.onnx", 8)], p, feed_for(8))


def test_the_agent_refuses_a_short_token(tmp_path):
    (tmp_path / "t").write_text("short")
    run = subprocess.run([sys.executable, "-m", "autocl", "agent", "--port", "0", "--token-file", str(tmp_path / "t")],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         timeout=120)
    assert run.returncode == 2 and "at least 16" in run.stderr and "Traceback" not in run.stderr


def test_the_light_entry_point_serves_without_importing_torch(tmp_path):
    (tmp_path / "t").write_text(TOKEN)
    code = ("import sys\n"
            "from autocl.hardware.__main__ import main\n"
            "rc = main(['--port', '0', '--token-file', sys.argv[1], '--idle-exit', '0.5', '--quiet'])\n"
            "print('torch imported:', 'torch' in sys.modules, 'exit', rc)\n")
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "t")], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "listening on http://127.0.0.1:" in run.stdout, run.stderr
    assert "torch imported: False exit 0" in run.stdout
