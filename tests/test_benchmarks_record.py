"""What a benchmark result records (``benchmarks/_record.py``) and the front figure's data."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import _front_figure  # noqa: E402
import _record  # noqa: E402


def _git(repo: Path, *argv: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *argv], check=True, capture_output=True
    )


def test_the_git_state_names_the_commit_and_whether_the_tree_was_clean(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    _git(tmp_path, "add", "a.py")
    _git(tmp_path, "commit", "-qm", "one")
    clean = _record.git_state(tmp_path)
    assert len(clean["commit"]) == 40 and clean["clean"] is True
    (tmp_path / "a.py").write_text("x = 2\n")
    dirty = _record.git_state(tmp_path)
    assert dirty["commit"] == clean["commit"] and dirty["clean"] is False and dirty["changed"] == ["a.py"]
    assert _record.commit_text(dirty) == clean["commit"][:10] + " with uncommitted changes"
    nothing = _record.git_state(tmp_path / "missing")
    assert nothing["commit"] is None and "not a git checkout" in _record.commit_text(nothing)


def test_quick_shortens_only_what_the_user_left_at_its_default(tmp_path):
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    _record.add_run_args(parser, quick="fewer trials")
    args = parser.parse_args(["--quick", "--rounds", "7", "--out", str(tmp_path / "elsewhere")])
    _record.quick_defaults(args, parser, trials=4, rounds=2)
    assert (args.trials, args.rounds) == (4, 7)
    assert _record.out_dir(args) == tmp_path / "elsewhere" and (tmp_path / "elsewhere").is_dir()
    full = parser.parse_args([])
    _record.quick_defaults(full, parser, trials=4)
    assert full.trials == 20 and full.out == _record.RESULTS


def test_the_figure_puts_the_whole_front_and_every_other_row_on_one_plot(tmp_path):
    def row(metric, speedup):
        return {"metric": metric, "speedup": speedup, "file_kb": 1.0, "shipped_kb": 0.5}

    result = {
        "workload": "minilm",
        "metric": "fidelity",
        "max_drop": 0.01,
        "profile": "cpu-local",
        "rows": {
            "fp32": row(1.0, 1.0),
            "int8 dynamic": row(0.991, 2.3),
            "INC accuracy-aware tuning": row(0.99, 2.6),
            "autocl trial 9": row(0.97, 3.5),
            "autocl trial 4": row(0.992, 2.8),
        },
        "row_kinds": {
            "fp32": "fp32",
            "int8 dynamic": "by hand",
            "INC accuracy-aware tuning": "peer",
            "autocl trial 9": "autocl",
            "autocl trial 4": "autocl",
        },
    }
    data = _front_figure.points(result)
    assert [p["name"] for p in data["points"][:2]] == ["autocl trial 4", "autocl trial 9"]  # the front, by speed
    assert {p["kind"] for p in data["points"]} == {"autocl", "peer", "by hand", "fp32"}
    written = _front_figure.write(result, tmp_path / "front")
    assert [p.suffix for p in written] == [".json", ".html"] and all(p.stat().st_size > 0 for p in written)
    fig = _front_figure.figure(data)
    assert [t.name for t in fig.data] == ["autocl front", "peer", "by hand", "fp32"]
    assert list(fig.data[0].x) == [2.8, 3.5]


def _top_level_names(path: Path) -> set[str]:
    import ast

    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return names


def test_every_benchmark_imports_only_names_its_helper_modules_define():
    """A helper module's refactor must not leave a benchmark importing a name that is gone (no benchmark
    runs in ``make test``, so this is the check that they still start)."""
    import ast

    bench = ROOT / "benchmarks"
    helpers = {p.stem: _top_level_names(p) for p in bench.glob("_*.py")}
    missing = []
    for script in sorted(bench.glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in helpers:
                missing += [
                    f"{script.name}: {node.module}.{a.name}" for a in node.names if a.name not in helpers[node.module]
                ]
    assert helpers and not missing, missing


def test_compare_fidelity_builds_a_valid_ladder_space_for_every_case():
    import compare_fidelity

    for case in compare_fidelity.SPACES:
        polish, ladder = compare_fidelity.spaces(case, None, 3)
        assert ladder.distill.fidelity.rungs == compare_fidelity.RUNGS[case] and polish.distill.fidelity is None
