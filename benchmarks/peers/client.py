"""Runs a peer compression tool (see ``run_peer.py``) in its own virtual environment.

Called from the main environment (``benchmarks/compare_baselines.py``); it needs only numpy and
the standard library and never imports the peer tool. ``run_peer`` always returns a dict: the peer's
result, or ``{"tool", "error"}`` with one line that says what went wrong, so a benchmark can stop (or,
when told to go on, name the peer that could not run) instead of skipping it silently. ``check_peer`` is
the quick dry run a benchmark does before its long steps: the venv is there and the tool imports.

The peer runs in a temporary directory: every path handed to it is made absolute first.

    python benchmarks/peers/client.py --selftest     # INC on the mnist workload, prints the JSON
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

PEERS_DIR = Path(__file__).resolve().parent
VENVS = {"inc": PEERS_DIR / ".venv", "olive": PEERS_DIR / ".venv-olive"}
RUN_PEER = PEERS_DIR / "run_peer.py"


def run_peer(
    tool: str,
    fp32_onnx: Path,
    calib: dict[str, np.ndarray],
    val_inputs: dict[str, np.ndarray],
    val_y: np.ndarray,
    metric: str,
    max_drop: float,
    out: Path,
    timeout_s: int,
    options: dict[str, object] | None = None,
) -> dict:
    """Tune ``fp32_onnx`` with peer ``tool`` ("inc" or "olive") and write its model to ``out``.

    ``calib`` and ``val_inputs`` map ONNX input names to arrays (rows on axis 0); ``val_y`` holds
    class labels (``metric="accuracy"``) or reference embeddings (``metric="cosine"``).
    ``max_drop`` is the tolerable metric loss relative to fp32. ``options`` are more ``run_peer.py``
    options (``{"num_heads": 12}`` is ``--num-heads 12``). Returns the peer's JSON result
    ({"tool", "version", "config", "tuning_seconds", "metric", "baseline_metric", "trials"}) or
    {"tool", "error"}.
    """
    python = _python(tool)
    if isinstance(python, dict):
        return python
    fp32_onnx, out = Path(fp32_onnx).resolve(), Path(out).resolve()  # the peer's cwd is a temporary directory
    if not fp32_onnx.is_file():
        return {"tool": tool, "error": f"the fp32 model {fp32_onnx} does not exist"}
    out.parent.mkdir(parents=True, exist_ok=True)
    if "y" in calib or "y" in val_inputs:
        return {"tool": tool, "error": "an ONNX input named 'y' clashes with the targets key of the .npz files"}
    with tempfile.TemporaryDirectory(prefix="autocl-peer-") as tmp:
        calib_path, val_path = Path(tmp) / "calib.npz", Path(tmp) / "val.npz"
        np.savez(calib_path, **calib)
        np.savez(val_path, **val_inputs, y=val_y)
        cmd = [str(python), str(RUN_PEER), "--tool", tool, "--model", str(fp32_onnx),
               "--calib", str(calib_path), "--val", str(val_path), "--metric", metric,
               "--max-drop", str(max_drop), "--out", str(out)]
        for key, value in (options or {}).items():
            cmd += [f"--{key.replace('_', '-')}", str(value)]
        return _run(tool, cmd, timeout_s, tmp)


def check_peer(tool: str, timeout_s: int = 300) -> dict:
    """A dry run of ``tool``: its venv exists and the tool imports there. Returns ``{"tool", "version"}``
    or ``{"tool", "error"}`` (seconds, where a tuning run takes minutes)."""
    python = _python(tool)
    if isinstance(python, dict):
        return python
    with tempfile.TemporaryDirectory(prefix="autocl-peer-") as tmp:
        return _run(tool, [str(python), str(RUN_PEER), "--tool", tool, "--check"], timeout_s, tmp)


def _python(tool: str) -> Path | dict:
    """The peer venv's interpreter, or the error that says why there is none."""
    if tool not in VENVS:
        return {"tool": tool, "error": f"unknown peer tool {tool!r}: choose one of {sorted(VENVS)}"}
    python = VENVS[tool] / "bin" / "python"
    if not python.is_file():
        return {"tool": tool, "error": f"{python} not found: run `make peer-venv`"}
    return python


def _run(tool: str, cmd: list[str], timeout_s: int, cwd: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)  # the peer venv must not see the main environment's packages
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env, cwd=cwd)
    except subprocess.TimeoutExpired:
        return {"tool": tool, "error": f"timed out after {timeout_s} s"}
    except OSError as exc:  # a venv interpreter that cannot start (a broken venv)
        return {"tool": tool, "error": f"{cmd[0]} could not start: {exc}"}
    return parse_result(tool, proc.returncode, proc.stdout, proc.stderr)


def parse_result(tool: str, returncode: int, stdout: str, stderr: str) -> dict:
    """The peer's last JSON line, or an error carrying its last stderr line (a crash: non-zero exit)."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            result = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(result, dict) and "tool" in result:
            if returncode != 0 and "error" not in result:
                break
            return result
    last = next((ln.strip() for ln in reversed(stderr.splitlines()) if ln.strip()), "no output")
    return {"tool": tool, "error": f"exit status {returncode}: {last}"[:500]}


def _selftest(tool: str) -> int:
    """``tool`` on the mnist workload's fp32 ONNX; prints the peer's JSON line."""
    from autocl.compress import Compressor
    from autocl.runtime import cache_dir
    from autocl.workloads import load_workload

    w = load_workload("mnist")
    fp32 = Compressor(w, cache_dir()).baseline()
    feeds = w.calibration_feeds(128)
    calib = {name: np.concatenate([f[name] for f in feeds]) for name in feeds[0]}
    x, y = w.validation
    out = Path(tempfile.gettempdir()) / f"autocl-peer-{tool}-mnist.onnx"
    result = run_peer(tool, fp32, calib, {w.input_names[0]: x}, y, "accuracy", 0.01, out, timeout_s=1800)
    print(json.dumps(result))
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--selftest":
        sys.exit(_selftest(sys.argv[2] if len(sys.argv) > 2 else "inc"))
    print("usage: python benchmarks/peers/client.py --selftest [inc|olive]", file=sys.stderr)
    sys.exit(2)
