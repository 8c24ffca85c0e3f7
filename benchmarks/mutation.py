"""Mutation score of the core: how many small bugs planted by mutmut the test suite catches.

Each module in scope is mutated against a fast subset of the tests, the tests that exercise it
(``MODULE_TESTS``); ``--suite`` runs the whole default suite against every module instead (hours on
2 cores). mutmut 3 copies the project to ``mutants/`` (gitignored), records which test reaches which
function, and runs only those tests against each mutant of the function. Modules that share a test
subset are mutated in one mutmut run; ``mutants/`` is cleared before each run.

    python benchmarks/mutation.py                                     # the whole scope (make mutation)
    python benchmarks/mutation.py --only autocl/evaluate.py autocl/study/_study.py --minutes 20
    python benchmarks/mutation.py --suite                             # every module, whole suite

Results: ``benchmarks/results/mutation.md`` (score per module, every surviving mutant as a diff) and
``mutation.json``, with the command and the date. A mutant counts as caught when a test fails, or
times out, or crashes; ``no tests`` means no test of the subset reaches the mutated function;
``not checked`` means the time box ran out first (it is shared evenly between the mutmut runs, and
mutmut checks the mutants with the fastest tests first).
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "benchmarks"))

from _record import commit_text, git_state  # noqa: E402
SCOPE = ("autocl/compress/*.py", "autocl/evaluate.py", "autocl/study/*.py", "autocl/export.py")

# the fast subset of tests for each module: the tests written for it, and those that drive it end to end
MODULE_TESTS: dict[str, tuple[str, ...]] = {
    "autocl/evaluate.py": ("tests/test_evaluate.py",),
    "autocl/compress/distill.py": ("tests/compress/test_distill.py",),
    "autocl/compress/prune.py": ("tests/compress/test_prune.py", "tests/compress/test_transformer_prune.py"),
    "autocl/compress/_graph.py": ("tests/compress/test_prune.py", "tests/compress/test_transformer_prune.py"),
    "autocl/compress/quantize.py": ("tests/compress/test_quantize.py", "tests/compress/test_precisions.py"),
    "autocl/compress/support.py": ("tests/compress/test_quantize.py", "tests/compress/test_precisions.py"),
    "autocl/compress/onnx_export.py": ("tests/compress/test_quantize.py", "tests/compress/test_precisions.py"),
    "autocl/compress/pipeline.py": ("tests/compress/",),
    "autocl/compress/__init__.py": ("tests/compress/",),
    "autocl/study/_study.py": ("tests/study/test_resume.py", "tests/study/test_storage.py"),
    "autocl/study/_sensitivity.py": ("tests/space/test_mixed_space.py",),
    "autocl/study/*.py": ("tests/study/",),
    "autocl/export.py": ("tests/test_export.py",),
}
CAUGHT = {"killed", "timeout", "segfault", "caught by type check"}


def in_scope(only: list[str] | None) -> list[str]:
    files = sorted({str(p.relative_to(ROOT)) for pat in SCOPE for p in ROOT.glob(pat)})
    if only:
        files = [f for f in files if any(fnmatch.fnmatch(f, o) or f == o for o in only)]
    return files


def tests_of(path: str) -> tuple[str, ...]:
    for pattern, tests in MODULE_TESTS.items():  # exact names first, then the package's pattern
        if path == pattern or fnmatch.fnmatch(path, pattern):
            return tests
    raise SystemExit(f"benchmarks/mutation.py: no tests chosen for {path}; add it to MODULE_TESTS")


def teachers() -> Path:
    """Train the test workloads' teachers once; every mutant's test run copies them (AUTOCL_TEST_TEACHERS)."""
    home = ROOT / ".mutation-home"
    folder = home / "cache" / "teachers"
    env = {**os.environ, "AUTOCL_HOME": str(home), "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", "from autocl.workloads import load_workload; load_workload('digits')"],
                   env=env, check=True, cwd=ROOT)
    return folder


def run_mutmut(files: list[str], tests: tuple[str, ...], max_children: int, deadline: float) -> None:
    """One mutmut run in a child process (its own process group), stopped at ``deadline``."""
    shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    cmd = [sys.executable, __file__, "--inner", "--only", *files, "--tests", *tests,
           "--max-children", str(max_children)]
    child = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)
    try:
        child.wait(timeout=None if deadline == float("inf") else max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        print(f"time box reached: stopping mutmut (pid {child.pid})", flush=True)
        os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def inner(files: list[str], tests: list[str], max_children: int) -> None:
    """Inside the child: mutmut with this run's modules and tests (its config is read once, then kept)."""
    from mutmut.__main__ import cli
    from mutmut.configuration import config

    cfg = config()
    cfg.only_mutate = files
    cfg.pytest_add_cli_args_test_selection = tests
    cli(["run", "--max-children", str(max_children)])


def harvest(files: list[str]) -> dict[str, dict]:
    """Status of every mutant of ``files`` as mutmut recorded it, with the diff of each survivor."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code

    out = {}
    for path in files:
        meta = ROOT / "mutants" / (path + ".meta")
        if not meta.is_file():
            continue
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        mutants = {}
        for name, code in codes.items():
            status = status_by_exit_code[code]
            entry = {"status": status}
            if status in ("survived", "no tests", "suspicious"):
                try:
                    entry["diff"] = get_diff_for_mutant(name, path=path)
                except Exception as exc:  # a diff is a courtesy; the status is the result
                    entry["diff"] = f"(no diff: {exc})"
            mutants[name] = entry
        out[path] = mutants
    return out


def counts(mutants: dict) -> dict[str, int]:
    c: dict[str, int] = {}
    for m in mutants.values():
        c[m["status"]] = c.get(m["status"], 0) + 1
    return c


def score(c: dict[str, int]) -> float | None:
    checked = sum(n for s, n in c.items() if s not in ("not checked", "skipped"))
    return sum(c.get(s, 0) for s in CAUGHT) / checked if checked else None


def write_report(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    total: dict[str, int] = {}
    rows = []
    for path, mutants in result["modules"].items():
        c = counts(mutants)
        for k, v in c.items():
            total[k] = total.get(k, 0) + v
        s = score(c)
        rows.append(f"| {path} | {' '.join(result['tests'][path])} | {len(mutants)} | {c.get('killed', 0)} | "
                    f"{c.get('timeout', 0) + c.get('segfault', 0)} | {c.get('survived', 0)} | {c.get('no tests', 0)} | "
                    f"{c.get('suspicious', 0)} | {c.get('not checked', 0)} | {'-' if s is None else f'{s:.1%}'} |")
    s = score(total)
    lines = [
        "# Mutation score of the core (mutmut)", "",
        f"Command: `{result['command']}`  ", f"Date: {result['date']}  ",
        f"Commit: {commit_text(result.get('git') or {})}  ",
        f"mutmut {result['mutmut']}, {result['minutes']:.1f} min wall-clock, {result['scope']}", "",
        f"**Score: {'-' if s is None else f'{s:.1%}'}** of the checked mutants caught "
        f"({sum(total.get(k, 0) for k in CAUGHT)} of {sum(n for k, n in total.items() if k not in ('not checked', 'skipped'))}; "
        f"{total.get('not checked', 0)} not checked). Caught: a test failed, timed out or crashed. "
        "`no tests`: no test of the module's subset reaches the function.", "",
        "| module | tests run | mutants | killed | timeout/crash | survived | no tests | suspicious | not checked | score |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", *rows, "",
        "Full campaign: `make mutation` (every module of the scope against its test subset, no time box;",
        "`python benchmarks/mutation.py --suite` for the whole default suite). One module:",
        "`python benchmarks/mutation.py --only autocl/export.py`. Inspect one mutant: `mutmut show NAME`",
        "after a run (the `mutants/` folder is kept until the next run).", "",
        "## Surviving mutants", "",
    ]
    for path, mutants in result["modules"].items():
        for name, m in mutants.items():
            if m["status"] in ("survived", "suspicious"):
                lines += [f"### {name} ({m['status']})", "", "```diff", m.get("diff", ""), "```", ""]
    no_tests = [n for mutants in result["modules"].values() for n, m in mutants.items() if m["status"] == "no tests"]
    if no_tests:
        lines += ["## Mutants no test of the subset reaches", "", *(f"- {n}" for n in no_tests), ""]
    out.with_suffix(".md").write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", help="modules (paths or globs) to mutate; default: the whole scope")
    ap.add_argument("--suite", action="store_true", help="run the whole default suite against every module")
    ap.add_argument("--minutes", type=float, default=0, help="time box for the whole campaign (0: none)")
    ap.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--out", default=str(RESULTS / "mutation"), help="results path without suffix (.md and .json)")
    ap.add_argument("--quick", action="store_true",
                    help="a short run (under 10 minutes on 2 cores): autocl/evaluate.py alone, a 5-minute time box")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tests", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.chdir(ROOT)
    if args.quick:
        args.only, args.minutes = args.only or ["autocl/evaluate.py"], args.minutes or 5
    if args.inner:
        return inner(args.only, args.tests, args.max_children)
    from importlib.metadata import version

    out = Path(args.out).resolve()
    files = in_scope(args.only)
    if not files:
        raise SystemExit(f"benchmarks/mutation.py: --only {' '.join(args.only)} matches no module of the scope {SCOPE}")
    os.environ.update({"AUTOCL_TEST_TEACHERS": str(teachers()), "OMP_NUM_THREADS": "1", "AUTOCL_TRAIN_THREADS": "1"})
    os.environ.pop("PYTHONPATH", None)  # the tests must import the mutated copy under mutants/
    groups: dict[tuple[str, ...], list[str]] = {}
    for f in files:
        groups.setdefault(("tests/",) if args.suite else tests_of(f), []).append(f)
    start = time.monotonic()
    deadline = start + args.minutes * 60 if args.minutes else float("inf")
    result = {"command": " ".join(["python", "benchmarks/mutation.py", *sys.argv[1:]]),
              "date": dt.datetime.now().isoformat(timespec="seconds"), "mutmut": version("mutmut"), "scope": ("modules " + ", ".join(files)), "modules": {}, "tests": {},
              "git": git_state(), "quick": args.quick}
    for i, (tests, group) in enumerate(groups.items()):
        # a time box is shared fairly: each run gets its part of what is left, unused time rolls over
        share = (deadline - time.monotonic()) / (len(groups) - i)
        print(f"mutating {', '.join(group)} against {' '.join(tests)}", flush=True)
        run_mutmut(group, tests, args.max_children, time.monotonic() + share)
        result["modules"].update(harvest(group))
        result["tests"].update({f: list(tests) for f in group})
        result["minutes"] = (time.monotonic() - start) / 60
        write_report(result, out)
    result["minutes"] = (time.monotonic() - start) / 60
    write_report(result, out)
    print(f"wrote {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
