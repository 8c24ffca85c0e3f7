"""Resident memory over a long search: N trials of the built-in CNN in one process.

A search left running for days must not grow: every trial's student, onnxruntime sessions and
batches are released when it ends (``autocl.runtime.release_memory``). This runs ``--trials``
trials (default 100; ``--quick``: 25) of the built-in ``mnist`` CNN through ``run_search`` in one
process, each with a new student (prune ratio, importance and temperature vary; short
distillation), and records the resident set (``VmRSS``) after each trial. Target: less than 10%
growth from trial 10 to the last.

    python benchmarks/long_run_memory.py            # 100 trials
    python benchmarks/long_run_memory.py --quick    # 25 trials

The teacher and data come from ``AUTOCL_HOME``'s cache; students and the study live in a
temporary home. Results go to ``benchmarks/results/long_run_memory[-quick].json`` and ``.md``,
with the command, the CPU and the date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPACE = {
    "name": "long-run-memory",
    "prune": {"ratio": {"low": 0.1, "high": 0.7, "step": 0.01}, "importance": ["l1", "l2"]},
    "distill": {
        "temperature": {"low": 1.0, "high": 8.0, "step": 0.25},
        "alpha": 0.5,
        "steps": 10,
        "batch_size": 64,
        "polish": {"epochs": 0.0},
    },
    "quant": {"precisions": ["fp32", "int8"], "calibration_samples": 32},
}
PROFILE = {
    "name": "memory-bench",
    "threads": 1,
    "batch_size": 8,
    "measurement": {"warmup": 2, "repeats": 10, "min_repeats": 5, "max_seconds": 0.5},
}


def rss_mb() -> float:
    """This process's resident set, in MB (``VmRSS`` of ``/proc/self/status``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _prepare_home() -> Path:
    """A fresh AUTOCL_HOME whose cache links the persistent teachers and data (not the students)."""
    persistent = Path(os.environ.get("AUTOCL_HOME", ROOT / "studies")) / "cache"
    work = Path(tempfile.mkdtemp(prefix="autocl-memory-"))
    (work / "cache").mkdir()
    for sub in ("teachers", "data"):
        (persistent / sub).mkdir(parents=True, exist_ok=True)
        os.symlink((persistent / sub).resolve(), work / "cache" / sub)
    os.environ["AUTOCL_HOME"] = str(work)
    return work


class MemoryReporter:
    """Records the resident set after every finished trial."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.start = time.monotonic()

    def trial_started(self, number: int) -> None:
        pass

    def stage(self, number: int, stage: str) -> None:
        pass

    def trial_finished(self, trial) -> None:
        row = {
            "trial": trial.number,
            "state": trial.state.name.lower(),
            "rss_mb": round(rss_mb(), 1),
            "seconds": round(time.monotonic() - self.start, 1),
        }
        self.rows.append(row)
        print(
            f"trial {row['trial']:>3} {row['state']:<8} rss {row['rss_mb']:7.1f} MB at {row['seconds']} s", flush=True
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="25 trials")
    parser.add_argument("--workload", default="mnist")
    args = parser.parse_args()
    n = 25 if args.quick else args.trials
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("AUTOCL_TRAIN_THREADS", "1")
    home = _prepare_home()
    import optuna

    from autocl.hardware import profile_from_dict
    from autocl.space import SearchSpace
    from autocl.study import run_search
    from autocl.workloads import load_workload

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    workload = load_workload(args.workload)
    rss_loaded = rss_mb()
    reporter = MemoryReporter()
    run_search(
        workload,
        SearchSpace.model_validate(SPACE),
        profile_from_dict(PROFILE),
        study_name="memory",
        storage=f"sqlite:///{home / 'memory.db'}",
        n_trials=n,
        reporter=reporter,
        remeasure=False,
        sensitivity=False,
        polish=False,
        recipes=False,
    )
    rows = reporter.rows
    at = {r["trial"]: r["rss_mb"] for r in rows}
    ref_index = min(9, len(rows) - 1)  # trial 10 (the tenth finished), the reference after warm-up
    ref, last = rows[ref_index]["rss_mb"], rows[-1]["rss_mb"]
    growth = (last - ref) / ref
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "workload": args.workload,
        "trials": len(rows),
        "rss_after_loading_mb": round(rss_loaded, 1),
        "rss_trial_10_mb": ref,
        "rss_last_mb": last,
        "rss_max_mb": max(at.values()),
        "growth_10_to_last": round(growth, 4),
        "target": "growth < 10% from trial 10 to the last",
        "met": growth < 0.10,
        "per_trial": rows,
        "note": "the machine may be shared with other processes: seconds are not comparable across runs",
    }
    out = ROOT / "benchmarks" / "results" / f"long_run_memory{'-quick' if args.quick else ''}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Resident memory over {len(rows)} trials of `{args.workload}` in one process",
        "",
        f"`{result['command']}` on {result['cpu']} ({result['cores']} cores), {result['date']}.",
        "",
        f"After loading: {result['rss_after_loading_mb']} MB. After trial 10: {ref} MB; after the last: {last} MB "
        f"(max {result['rss_max_mb']} MB): {100 * growth:+.1f}% ({'met' if result['met'] else 'NOT met'}: "
        "target under +10%).",
        "",
        "| trial | state | RSS MB | seconds |",
        "| --- | --- | --- | --- |",
        *(f"| {r['trial']} | {r['state']} | {r['rss_mb']} | {r['seconds']} |" for r in rows),
        "",
        result["note"],
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"trial 10: {ref} MB, last: {last} MB, growth {100 * growth:+.1f}%; wrote {out}.json and .md")
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
