"""Does adaptive batch norm rank pruned students by where they end up? (EagleEye, on autocl's CNN)

For a set of pruned students (prune ratios x importance x scope), each built through autocl's
Compressor on a fidelity ladder ending at ``--steps``, this reads what the ladder records on
held-out training rows: the metric right after pruning, after adaptive batch norm (re-estimated BN
statistics, no gradient step) and after the last rung. It reports the Spearman rank correlation of
each early score with the final one.

    python benchmarks/fidelity_abn.py --workload mnist --steps 320
    python benchmarks/fidelity_abn.py --workload "mnist?train_limit=512" --steps 320
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STUDENTS = [(r, imp, "local") for imp in ("l1", "l2") for r in (0.3, 0.5, 0.7, 0.8)] + [
    (0.5, "l2", "global"),
    (0.7, "l2", "global"),
]


def cpu() -> str:
    """The CPU model and the flags int8 speed depends on (read from /proc/cpuinfo)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "?")
    flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), [])
    wanted = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    return f"{model} ({' '.join(wanted) or 'no AVX2'})"


def spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def measure(workload: str, steps: int, lr: float, cache: Path, limit: int | None = None) -> list[dict]:
    """One row per student: its knobs and what the ladder recorded."""
    from autocl.compress import Compressor
    from autocl.config import CompressionConfig, DistillConfig, PruneConfig
    from autocl.workloads import load_workload

    w = load_workload(workload)
    comp = Compressor(w, cache)
    rows = []
    for ratio, importance, scope in STUDENTS[:limit]:
        cfg = CompressionConfig(
            prune=PruneConfig(ratio=ratio, importance=importance, scope=scope),
            distill=DistillConfig(steps=steps, ladder_steps=steps, lr=lr, temperature=4.0, alpha=0.5),
        )
        t0 = time.time()
        fid = comp.student(cfg).fidelity or {}
        rows.append(
            {
                "ratio": ratio,
                "importance": importance,
                "scope": scope,
                "pruned": fid.get("pruned_metric"),
                "adapted": fid.get("adapted_metric"),
                "final": fid.get("metric"),
                "seconds": round(time.time() - t0, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", default="mnist")
    parser.add_argument("--steps", type=int, default=320)
    parser.add_argument("--lr", type=float, default=0.002)
    parser.add_argument("--students", type=int, default=None, help="only the first N students")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:  # every student built here, none from an earlier cache
        rows = measure(args.workload, args.steps, args.lr, Path(cache), args.students)
    final = [r["final"] for r in rows]
    rho_abn = spearman([r["adapted"] for r in rows], final)
    rho_raw = spearman([r["pruned"] for r in rows], final)
    device = cpu()
    lines = [
        f"# Adaptive batch norm as a ranking of pruned students ({args.workload})",
        "",
        f"`{' '.join(shlex.quote(a) for a in ['python', *sys.argv])}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{platform.node()}, {device}. Metric on held-out training rows; final = after {args.steps} distillation "
        "steps (one cosine schedule, lr {args.lr}).".replace("{args.lr}", str(args.lr)),
        "",
        "| prune | importance | scope | after pruning | after adaptive BN | final |",
        "| --- | --- | --- | --- | --- | --- |",
        *(
            f"| {r['ratio']} | {r['importance']} | {r['scope']} | {r['pruned']:.4f} | {r['adapted']:.4f} | "
            f"{r['final']:.4f} |"
            for r in rows
        ),
        "",
        f"Spearman rank correlation with the final metric: **after adaptive BN {rho_abn:.3f}**, "
        f"after pruning alone {rho_raw:.3f} ({len(rows)} students).",
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "fidelity_abn-" + args.workload.replace("?", "-").replace("=", "")
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    (out / f"{name}.json").write_text(
        json.dumps({"rows": rows, "spearman_adapted": rho_abn, "spearman_pruned": rho_raw, "device": device}, indent=1)
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
