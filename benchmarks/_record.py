"""What every benchmark result records, and how its rows are measured side by side.

The one place for what the scripts in ``benchmarks/`` share:

* ``add_run_args``: ``--quick`` (a short run: fewer trials, rounds and steps, so each benchmark finishes
  in under 10 minutes on 2 cores) and ``--out`` (where results go; anywhere but ``benchmarks/results/``
  leaves the committed results untouched);
* ``header``: what a result says about how it was made: the command, the machine (CPU model and flags,
  cores, onnxruntime), the load, the date, the project's git commit and whether its tree was clean, and
  each peer tool's version;
* ``measure_all``: every artifact measured in interleaved rounds (``autocl.hardware.measure_many``), so
  that speed-ups are ratios taken in one run;
* ``log`` and ``cpu_model``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "unknown CPU"
    return next(
        (line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "unknown CPU"
    )


_GIT_AT_START: dict | None = None


def add_run_args(parser: argparse.ArgumentParser, *, quick: str) -> None:
    """``--quick`` (``quick`` says what it shortens) and ``--out`` (a folder, default ``benchmarks/results``).

    Called as a script starts, it also takes the git state the result will record: the tree the run began
    from, whatever is committed while it runs."""
    global _GIT_AT_START
    _GIT_AT_START = git_state()
    parser.add_argument(
        "--quick", action="store_true", help=f"a short run that finishes in under 10 minutes on 2 cores: {quick}"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS,
        help="folder for the results (default benchmarks/results/, the committed ones)",
    )


def out_dir(args: argparse.Namespace) -> Path:
    """``args.out``, absolute and created."""
    path = Path(args.out).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def quick_defaults(args: argparse.Namespace, parser: argparse.ArgumentParser, **short: object) -> None:
    """With ``--quick``, each option in ``short`` the user left at its default takes the short value."""
    if not args.quick:
        return
    for name, value in short.items():
        if getattr(args, name) == parser.get_default(name):
            setattr(args, name, value)


def git_state(root: Path = ROOT) -> dict:
    """The project's commit and whether its tree was clean (tracked changes or untracked, not ignored, files)."""

    def git(*argv: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *argv], capture_output=True, text=True, check=True, timeout=30
        ).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        changed = [line[3:] for line in git("status", "--porcelain").splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError) as exc:
        return {"commit": None, "clean": None, "error": f"not a git checkout or no git: {type(exc).__name__}"}
    return {"commit": commit, "clean": not changed, "changed": changed[:20]}


def command_line() -> str:
    """How this script was run, from the project root."""
    script = Path(sys.argv[0]).resolve()
    try:
        shown = script.relative_to(ROOT)
    except ValueError:
        shown = script
    return f"python {shown} " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def header(profile=None, peers: dict[str, str] | None = None, *, quick: bool = False) -> dict:
    """What a result records about how it was made (see the module's docstring)."""
    from autocl.hardware import device_description

    device = device_description(profile) if profile is not None else {"cpu": cpu_model(), "cores": os.cpu_count()}
    return {
        "command": command_line().strip(),
        "quick": quick,
        "device": {**device, "python": platform.python_version()},
        "load": [round(x, 2) for x in os.getloadavg()],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "git": _GIT_AT_START or git_state(),
        "peers": dict(peers or {}),
    }


def commit_text(git: dict) -> str:
    """``git_state`` in words: the short commit, and whether the tree had uncommitted changes."""
    if not git.get("commit"):
        return f"unknown ({git.get('error', 'not recorded')})"
    return git["commit"][:10] + ("" if git.get("clean") else " with uncommitted changes")


def header_line(h: dict) -> str:
    """One Markdown line of ``header``'s facts."""
    d = h["device"]
    commit = commit_text(h.get("git") or {})
    flags = [f for f in d.get("cpu_flags", ()) if "vnni" in f or "amx" in f or f.startswith("avx512f")]
    peers = "; ".join(f"{k} {v}" for k, v in h.get("peers", {}).items())
    return (
        f"Command: `{h['command']}`{' (quick run)' if h.get('quick') else ''} — {d.get('cpu')} "
        f"({d.get('cores')} cores{', ' + ' '.join(flags) if flags else ''}), onnxruntime {d.get('onnxruntime')}, "
        f"load average {h.get('load')}, {h.get('date')}, commit {commit}" + (f"; peers: {peers}" if peers else "") + "."
    )


def measure_all(paths: dict[str, Path], w, profile, rounds: int) -> dict[str, dict]:
    """Every artifact in ``paths`` measured in ``rounds`` interleaved rounds, the order reversed every other
    round so that drift hits every artifact alike: name -> {latency_ms (median of the round medians),
    latency_iqr_ms (of all samples), samples}."""
    from autocl.hardware import measure_many

    feed = w.sample_feed(profile.batch_size)
    names = list(paths)
    per_round: dict[str, list[float]] = {n: [] for n in names}
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for n, m in zip(
            order, measure_many([Path(paths[n]).resolve() for n in order], profile, feed, memory=False), strict=True
        ):
            per_round[n].append(m.median_ms)
            samples[n].extend(m.samples_ms)
    out = {}
    for n in names:
        s = sorted(samples[n])
        q = statistics.quantiles(s, n=4) if len(s) > 1 else [s[0]] * 3
        out[n] = {"latency_ms": statistics.median(per_round[n]), "latency_iqr_ms": q[2] - q[0], "samples": len(s)}
    return out
