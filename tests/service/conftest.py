"""A real `autocl serve` process on loopback, started and stopped the way a user does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.conftest import TINY_PROFILE_YAML

TOKEN = "test-token-0123456789abcdef"
SPACE = """
name: tiny
prune: {ratio: [0.0, 0.5]}
distill: {temperature: [2.0, 4.0], alpha: 0.5, steps: 8, batch_size: 32, polish: {epochs: 0}}
quant: {precisions: [fp32, int8], calibration_samples: 32}
"""
PROFILE = TINY_PROFILE_YAML


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``autocl serve`` in a subprocess, with AUTOCL_HOME = ``home``; ``client`` carries the token."""

    def __init__(self, home: Path, *, max_running: int = 1) -> None:
        self.home, self.max_running = home, max_running
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.output = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Server":
        self.port = free_port()
        env = {**os.environ, "AUTOCL_HOME": str(self.home), "AUTOCL_TOKEN": TOKEN, "PYTHONPATH": str(ROOT),
               "OMP_NUM_THREADS": "1"}
        self.log = open(self.home / f"serve-{self.port}.log", "w+")
        self.proc = subprocess.Popen([sys.executable, "-m", "autocl", "serve", "--port", str(self.port),
                                      "--max-running", str(self.max_running)], cwd=ROOT, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"autocl serve exited: {self.read_log()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    self.client = httpx.Client(base_url=self.url, timeout=120,
                                               headers={"Authorization": f"Bearer {TOKEN}"})
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"autocl serve did not answer /health in 60 s: {self.read_log()}")

    def read_log(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return Path(self.log.name).read_text()

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it, and wait for the graceful shutdown."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def wait_job(self, job_id: str, until, timeout: float = 420) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.client.get(f"/api/jobs/{job_id}")
            assert r.status_code == 200, r.text
            job = r.json()
            if until(job):
                return job
            time.sleep(0.5)
        raise AssertionError(f"job {job_id} did not get there in {timeout} s: {job}")


@pytest.fixture
def start_server():
    """Start servers with ``start_server(home, max_running=...)``; all are stopped at the end."""
    servers: list[Server] = []

    def start(home: Path, **kwargs) -> Server:
        servers.append(Server(home, **kwargs).start())
        return servers[-1]

    yield start
    for s in servers:
        s.stop()
