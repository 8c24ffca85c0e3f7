"""Memory of an inference session and size of its artifact.

Memory is measured in a fresh process, never in the searching one: there, memory freed by
training is reused by the session and its growth would read near zero. The fresh process is a
fork of a small probe server (``_memory_probe.py``: numpy and onnxruntime imported, nothing else),
so each measurement costs a fork, not a Python start-up.
The probe records the process's private resident memory (``RssAnon`` + ``RssShmem``: what the
model takes for itself, leaving out library code pages shared with other processes) after a
one-node session, after creating the artifact's session and after running it. Reported, in MB:

* ``runtime_mb``: onnxruntime's own start-up (environment, thread pool), the same for any model;
* ``session_mb``: creating the artifact's session (weights, pre-packed kernels, graph);
* ``arena_mb``: its first runs (activations and buffers, kept by the CPU arena when it is on);
* ``private_mb``: all three, what a process serving this model holds beyond Python and imports;
* ``peak_mb``: the highest private memory above that start (a lower bound derived from
  ``VmHWM``), the number ``budgets.memory_mb`` limits;
* ``rss_delta_mb``: the resident set's growth, library pages included;
* ``artifact_mb``: the artifact's file size.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from autocl.errors import TrialError
from autocl.hardware._profile import HardwareProfile
from autocl.openvino_session import OPENVINO, compile_config

_PROBE = Path(__file__).with_name("_memory_probe.py")
_TIMEOUT_S = 600.0


class _ProbeServer:
    """The long-lived probe process (one per autocl process), started on first use and restarted
    when it dies. Requests are serialized."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._owner = 0
        self._buffer = b""
        self._lock = threading.Lock()

    def _start(self) -> None:
        self._stop()
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self._proc = subprocess.Popen(
            [sys.executable, str(_PROBE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self._owner, self._buffer = os.getpid(), b""
        if not self._readline(60.0).get("ready"):
            raise OSError("the memory probe did not start")

    def _stop(self) -> None:
        if self._proc is not None and self._owner == os.getpid():
            try:
                self._proc.stdin.close()  # type: ignore[union-attr]
                self._proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
        self._proc = None

    def _readline(self, timeout_s: float) -> dict:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise TimeoutError(f"no answer from the memory probe in {timeout_s:g} s")
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise OSError("the memory probe exited")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def request(self, req: dict) -> dict:
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._proc is None or self._proc.poll() is not None or self._owner != os.getpid():
                        self._start()
                    self._proc.stdin.write((json.dumps(req) + "\n").encode())  # type: ignore[union-attr]
                    self._proc.stdin.flush()  # type: ignore[union-attr]
                    return self._readline(_TIMEOUT_S)
                except (OSError, ValueError) as exc:
                    self._stop()
                    if attempt == 2:
                        return {"error": f"the memory probe failed: {exc}"}
                except TimeoutError as exc:
                    self._stop()
                    return {"error": str(exc)}
        return {"error": "unreachable"}


_SERVER = _ProbeServer()
atexit.register(_SERVER._stop)


def _mb(kb: float) -> float:
    return round(kb / 1024, 3)


def _openvino_settings(profile: HardwareProfile) -> dict:
    """The OpenVINO device and compile properties the probe needs for an OpenVINO profile (else nothing)."""
    if profile.execution_provider != OPENVINO:
        return {}
    device, config = compile_config(dict(profile.provider_options), profile.threads)
    return {"ov_device": device, "ov_config": config}


def measure_memory(path: str | Path, profile: HardwareProfile, feed: dict[str, np.ndarray], *, runs: int = 3) -> dict:
    """Memory of one session of the artifact at ``path`` run on ``feed`` as ``profile`` configures it.

    Measured in a forked fresh process from ``/proc/self/status`` (Linux only); host memory only.

    Args:
        path: The ONNX artifact.
        profile: How the session is configured.
        feed: One batch of inputs.
        runs: How many times the session is run.

    Returns:
        The runtime, session, arena, private and peak memory in MB, and how they were measured; on a
        system without ``/proc``, only the artifact's size and an ``error``.

    Raises:
        TrialError: The memory probe could not run the artifact.
    """
    path = Path(path)
    size = path.stat().st_size
    if not Path("/proc/self/status").is_file():
        return {"artifact_mb": _mb(size / 1024), "error": "process memory is read from /proc (Linux only)"}
    with tempfile.TemporaryDirectory(prefix="autocl-mem-") as tmp:
        feed_path = Path(tmp) / "feed.npz"
        np.savez(feed_path, **feed)  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle
        r = _SERVER.request(
            {
                "model": str(path.resolve()),
                "feed": str(feed_path),
                "threads": profile.threads,
                "arena": profile.enable_cpu_mem_arena,
                "level": profile.graph_optimization,
                "spinning": profile.allow_spinning,
                "provider": profile.execution_provider,
                "provider_options": dict(profile.provider_options),
                "runs": runs,
                **_openvino_settings(profile),
            }
        )
    if "error" in r:
        raise TrialError(f"the memory probe could not run {path.name}: {r['error']}", stage="memory")
    b, rt, se, af = r["before"], r["runtime"], r["session"], r["after"]

    def private(kb: dict) -> int:
        return kb["RssAnon"] + kb.get("RssShmem", 0)

    # VmHWM counts library pages too; those at the end bound the ones in it from above, so this
    # is a lower bound of the private peak (and never below the private memory at the end)
    peak = max(af["VmHWM"] - af["RssFile"], private(af)) - private(b)
    out = {
        "runtime_mb": _mb(private(rt) - private(b)),
        "session_mb": _mb(private(se) - private(rt)),
        "arena_mb": _mb(private(af) - private(se)),
        "private_mb": _mb(private(af) - private(b)),
        "peak_mb": _mb(peak),
        "rss_delta_mb": _mb(af["VmRSS"] - b["VmRSS"]),
        "artifact_mb": _mb(size / 1024),
        "arena_enabled": profile.enable_cpu_mem_arena,
        "runs": runs,
        "method": "forked fresh process; /proc/self/status RssAnon+RssShmem (private), VmHWM"
        + ("" if r["peak_reset"] else " (peak not reset)"),
    }
    if profile.execution_provider not in ("CPUExecutionProvider", OPENVINO):
        out["note"] = "host memory only: device (GPU) memory is not included"
    return out
