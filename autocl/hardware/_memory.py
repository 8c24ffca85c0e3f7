"""Memory of an inference session and size of its artifact.

Memory is measured in a fresh Python process (``_memory_probe.py``), never in the searching one:
there, memory freed by training is reused by the session and its growth would read near zero.
The probe records resident memory (``VmRSS``) after imports, after a one-node session (what
onnxruntime itself costs), after creating the artifact's session, after running it, and the peak
(``VmHWM``, reset once imports are done). Reported, in MB:

* ``runtime_mb``: onnxruntime's own start-up (environment, thread pool), the same for any model;
* ``session_mb``: creating the artifact's session (weights, pre-packed kernels, graph);
* ``arena_mb``: its first runs (activations and buffers, kept by the CPU arena when it is on);
* ``rss_delta_mb``: all three, what a process serving this model holds beyond Python and imports;
* ``peak_rss_delta_mb``: the highest resident memory above that start, the number budgets use;
* ``artifact_mb``: the artifact's file size.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from autocl.errors import TrialError
from autocl.hardware._profile import HardwareProfile

_PROBE = Path(__file__).with_name("_memory_probe.py")


def _mb(kb: float) -> float:
    return round(kb / 1024, 3)


def measure_memory(path: str | Path, profile: HardwareProfile, feed: dict[str, np.ndarray], *,
                   runs: int = 3) -> dict:
    """Memory of one session of the artifact at ``path`` run on ``feed`` as ``profile`` configures it."""
    path = Path(path)
    size = path.stat().st_size
    if not Path("/proc/self/status").is_file():
        return {"artifact_mb": _mb(size / 1024), "error": "process memory is read from /proc (Linux only)"}
    with tempfile.TemporaryDirectory(prefix="autocl-mem-") as tmp:
        feed_path = Path(tmp) / "feed.npz"
        np.savez(feed_path, **feed)
        request = {
            "model": str(path.resolve()), "feed": str(feed_path), "threads": profile.threads,
            "arena": profile.enable_cpu_mem_arena, "level": profile.graph_optimization,
            "spinning": profile.allow_spinning, "provider": profile.execution_provider,
            "provider_options": dict(profile.provider_options), "runs": runs,
        }
        try:
            proc = subprocess.run([sys.executable, str(_PROBE)], input=json.dumps(request), capture_output=True,
                                  text=True, timeout=600)
        except subprocess.TimeoutExpired:
            raise TrialError(f"the memory probe of {path.name} ran over 600 s", stage="memory") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise TrialError(f"the memory probe could not run {path.name}: {last}", stage="memory")
    r = json.loads(proc.stdout)
    out = {
        "runtime_mb": _mb(r["runtime_kb"] - r["before_kb"]),
        "session_mb": _mb(r["session_kb"] - r["runtime_kb"]),
        "arena_mb": _mb(r["after_kb"] - r["session_kb"]),
        "rss_delta_mb": _mb(r["after_kb"] - r["before_kb"]),
        "peak_rss_delta_mb": _mb(max(r["peak_kb"], r["after_kb"]) - r["before_kb"]),
        "artifact_mb": _mb(size / 1024),
        "arena_enabled": profile.enable_cpu_mem_arena,
        "runs": runs,
        "method": "fresh process; /proc/self/status VmRSS, VmHWM" + ("" if r["peak_reset"] else " (peak not reset)"),
    }
    if profile.execution_provider != "CPUExecutionProvider":
        out["note"] = "host memory only: device (GPU) memory is not included"
    return out
