"""A search under a cache budget: the cache stays under it, and every front member still ships.

Runs ``autocl search --cache-max SIZE`` in a fresh ``AUTOCL_HOME`` (the teacher is copied from this
home's cache when it is there), samples the size of the cache folder every ``--every`` seconds while
the search runs, then exports every member of the front with ``autocl export``: an export that
finds the student evicted would rebuild it (distil again) and says so; the target is that none does
and that each one's artifact is the one measured. The same search without the budget is not run
here: the README's MiniLM table is that run.

    python benchmarks/cache_budget.py                                  # MiniLM, 12 minutes, 1 GB
    python benchmarks/cache_budget.py --workload mnist --space search_spaces/default.yaml --cache-max 20MB --quick

Results: ``benchmarks/results/cache_budget-<workload>.json`` and ``.md`` with the command, the CPU, the
date, the cache-size curve, the largest entry written and each export's verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._record import add_run_args, header, header_line, log, out_dir, quick_defaults  # noqa: E402


def folder_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (those that vanish while it is walked are skipped)."""
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def parse_size(text: str) -> int:
    """``1GB``, ``500MB``, ``20MB`` -> bytes, as ``--cache-max`` reads them (GB = 10^9, GiB = 2^30)."""
    from autocl.compress._budget import parse_size as autocl_parse

    return int(autocl_parse(text))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", default="minilm")
    parser.add_argument("--space", default="search_spaces/minilm.yaml")
    parser.add_argument("--profile", default="hardware_profiles/cpu-local.yaml")
    parser.add_argument("--cache-max", default="1GB")
    parser.add_argument("--timeout", default="12m", help="the search's wall-clock budget")
    parser.add_argument("--max-drop", type=float, default=0.01)
    parser.add_argument("--every", type=float, default=2.0, help="seconds between two cache-size samples")
    add_run_args(parser, quick="a 3-minute search")
    args = parser.parse_args()
    quick_defaults(args, parser, timeout="3m")
    out = out_dir(args)
    budget = parse_size(args.cache_max)
    home = Path(tempfile.mkdtemp(prefix="autocl-cache-budget-"))
    cache = home / "cache"
    here_teachers = Path(os.environ.get("AUTOCL_HOME", ROOT / "studies")) / "cache" / "teachers"
    if here_teachers.is_dir():  # a trained teacher is not what this measures: reuse it
        shutil.copytree(here_teachers, cache / "teachers")
    env = {**os.environ, "AUTOCL_HOME": str(home), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    autocl = [sys.executable, "-m", "autocl"]
    storage = f"sqlite:///{home / 'study.db'}"
    search = [
        *autocl, "search", "--workload", args.workload, "--space", args.space, "--profile", args.profile,
        "--study", "budget", "--storage", storage, "--timeout", args.timeout, "--max-drop", str(args.max_drop),
        "--cache-max", args.cache_max,
    ]  # fmt: skip
    from autocl.hardware import load_profile

    h = header(load_profile(args.profile, check=False), quick=args.quick)
    log(f"searching with --cache-max {args.cache_max} in {home}")
    samples: list[tuple[float, int]] = []
    done = threading.Event()
    t0 = time.time()

    def sample() -> None:
        while not done.is_set():
            samples.append((round(time.time() - t0, 1), folder_bytes(cache)))
            done.wait(args.every)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    proc = subprocess.run(search, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    done.set()
    sampler.join()
    samples.append((round(time.time() - t0, 1), folder_bytes(cache)))
    said = [line for line in proc.stdout.splitlines() if line.startswith("study budget") or line.startswith("error")]
    log(f"search exit {proc.returncode}: {' | '.join(said) or proc.stderr.strip()[-300:]}")
    summary = re.search(r"(\d+) new trial\(s\), (\d+) complete in all, (\d+) failed", proc.stdout)
    front = subprocess.run(
        [*autocl, "front", "--study", "budget", "--storage", storage, "--format", "json"],
        env=env, cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    members = (
        [m for m in json.loads(front.stdout or "[]") if isinstance(m.get("trial"), int)]
        if front.returncode == 0
        else []
    )
    exports = []
    for m in members:
        t1 = time.time()
        ex = subprocess.run(
            [*autocl, "export", "--study", "budget", "--storage", storage, "--trial", str(m["trial"]),
             "--out", str(home / "exports" / f"trial{m['trial']}"), "--latency-tolerance", "2"],
            env=env, cwd=ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        text = ex.stdout + ex.stderr
        exports.append(
            {
                "trial": m["trial"],
                "exit": ex.returncode,
                "seconds": round(time.time() - t1, 1),
                "identical": "artifact identical to the one measured" in text,
                "retrained": bool(re.search(r"distill|rebuil", text, re.I)),
                "line": next(
                    (line for line in text.splitlines() if line.startswith(f"trial {m['trial']}")), text[-300:]
                ),
            }
        )
        log(f"export trial {m['trial']}: exit {ex.returncode}, {exports[-1]['seconds']} s")
    peak = max(b for _, b in samples)
    cache_after = folder_bytes(cache)
    result = {
        "header": h,
        "workload": args.workload,
        "space": args.space,
        "cache_max": args.cache_max,
        "budget_bytes": budget,
        "search_exit": proc.returncode,
        "trials": {"new": int(summary[1]), "complete": int(summary[2]), "failed": int(summary[3])} if summary else None,
        "samples": samples,
        "peak_bytes": peak,
        "after_bytes": cache_after,
        "front": [
            {k: m.get(k) for k in ("trial", "metric", "speedup", "bits", "prune_ratio", "size_kb")} for m in members
        ],
        "exports": exports,
        "home": str(home),
    }
    name = f"cache_budget-{args.workload}{'-quick' if args.quick else ''}"
    (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    from autocl.compress._budget import format_size

    mb = 1024 * 1024
    over = [(t, b) for t, b in samples if b > budget]
    ok_exports = all(e["exit"] == 0 and e["identical"] and not e["retrained"] for e in exports) and bool(exports)
    lines = [
        f"# A search under `--cache-max {args.cache_max}`: `{args.workload}`",
        "",
        header_line(h),
        "",
        f"- Search: exit {proc.returncode}; "
        + (f"{summary[2]} trials complete, {summary[3]} failed" if summary else "no summary line")
        + f"; front of {len(members)} member(s).",
        f"- Cache size sampled every {args.every:g} s over {samples[-1][0]:.0f} s ({len(samples)} samples): "
        f"peak {format_size(peak)}, at the end {format_size(cache_after)}, budget {format_size(budget)}; "
        f"{len(over)} sample(s) over the budget"
        + (f" (largest {format_size(max(b for _, b in over))}, at {over[0][0]:.0f} s first)" if over else "")
        + ". The budget allows one entry being written on top.",
        f"- Every front member exported from the cache without retraining, artifact identical: "
        f"**{'yes' if ok_exports else 'no'}**.",
        "",
        "| trial | metric | speed-up | export exit | seconds | identical | retrained |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m, e in zip(members, exports, strict=False):
        lines.append(
            f"| {m['trial']} | {m.get('metric')} | {m.get('speedup')} | {e['exit']} | {e['seconds']} | "
            f"{'yes' if e['identical'] else 'no'} | {'yes' if e['retrained'] else 'no'} |"
        )
    lines += [
        "",
        "Cache size (MB) by time (s): "
        + ", ".join(f"{t:.0f}: {b / mb:.0f}" for t, b in samples[:: max(1, len(samples) // 40)]),
    ]
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if proc.returncode == 0 and ok_exports else 1


if __name__ == "__main__":
    raise SystemExit(main())
