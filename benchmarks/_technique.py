"""Shared by the technique benchmarks (``technique_*.py``): build named configurations with autocl's
own pipeline, evaluate them, measure them all in one interleaved run, and write the table.

Every row is a ``CompressionConfig`` built by ``autocl.compress.Compressor`` (students cached as in a
search), its metric read from an onnxruntime session (``autocl.evaluate``), its latency from
``autocl.hardware.measure_many`` in interleaved rounds (``compare_baselines.measure_all``): fp32 and
every candidate are timed in the same run, so drift hits them alike.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except Exception:  # lscpu missing: say so rather than guess
        return "unknown (lscpu unavailable)"


def build_rows(workload_name: str, configs: dict, profile_name: str, rounds: int) -> tuple[dict, dict]:
    """``configs``: row name -> CompressionConfig (``None``: the fp32 teacher). Returns the rows
    (metric, drop, latency, speed-up, sizes, build seconds, distillation steps) and facts of the run."""
    from autocl.compress import Compressor
    from autocl.compress.size import compressed_size
    from autocl.evaluate import evaluate_artifact, metric_drop
    from autocl.hardware import load_profile
    from autocl.runtime import cache_dir
    from autocl.workloads import load_workload

    from compare_baselines import measure_all

    profile = load_profile(profile_name)
    w = load_workload(workload_name)
    comp = Compressor(w, cache_dir())
    paths, built = {}, {}
    for name, cfg in configs.items():
        t0 = time.time()
        if cfg is None:
            paths[name] = comp.baseline()
            built[name] = {"seconds": 0.0, "steps": 0}
        else:
            log(f"building {name}")
            art = comp.artifact(cfg, lambda stage: log(f"  {stage}"))
            paths[name] = art.path
            built[name] = {"seconds": time.time() - t0, "steps": cfg.distill.steps if comp.trains(cfg) else 0,
                           "reused": art.student.reused, "config": cfg.to_dict()}
        log(f"  {name}: {built[name]['seconds']:.0f} s")
    log(f"measuring {len(paths)} artifacts in {rounds} interleaved rounds on {profile.name}")
    lat = measure_all(paths, w, profile, rounds)
    base = next(iter(paths))
    base_metric = evaluate_artifact(paths[base], w, profile)
    rows = {}
    for name, path in paths.items():
        m = evaluate_artifact(path, w, profile)
        rows[name] = {"metric": m, "metric_drop": metric_drop(m, base_metric, w.higher_is_better), **lat[name],
                      "speedup": lat[base]["latency_ms"] / lat[name]["latency_ms"],
                      "file_kb": path.stat().st_size / 1024, "compressed_kb": compressed_size(path) / 1024,
                      **built[name]}
    facts = {"workload": workload_name, "metric_name": w.metric_name, "profile": profile.name,
             "cpu": cpu_model(), "load": [round(x, 2) for x in os.getloadavg()],
             "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    return rows, facts


def write(name: str, title: str, intro: list[str], rows: dict, facts: dict, marks: dict[str, str],
          notes: list[str]) -> Path:
    """Write ``benchmarks/results/technique_<name>-<workload>.md`` (and .json) and print it."""
    command = "python benchmarks/" + Path(sys.argv[0]).name + " " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    head = ["model", facts["metric_name"], "Δ metric", "latency ms", "± IQR", "speed-up", "file KB",
            "compressed KB", "steps", "build s"]
    lines = [f"# {title}", "", *intro, "",
             f"Command: `{command.strip()}` — {facts['cpu']}, profile `{facts['profile']}`, load average "
             f"{facts['load']}, {facts['date']}.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k, r in rows.items():
        label = f"{k} ({marks[k]})" if k in marks else k
        lines.append("| " + " | ".join([label, f"{r['metric']:.4f}", f"{-r['metric_drop']:+.4f}",
                                        f"{r['latency_ms']:.3f}", f"{r['latency_iqr_ms']:.3f}", f"{r['speedup']:.2f}x",
                                        f"{r['file_kb']:.0f}", f"{r['compressed_kb']:.0f}", str(r["steps"]),
                                        f"{r['seconds']:.0f}"]) + " |")
    lines += ["", *notes, ""]
    text = "\n".join(lines)
    out = ROOT / "benchmarks" / "results" / f"technique_{name}-{facts['workload']}"
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps({"command": command, "facts": facts, "rows": rows}, indent=1,
                                                   default=str))
    print(text, flush=True)
    return out.with_suffix(".md")


def best(rows: dict, names: list[str], max_drop: float, key) -> str | None:
    """The row among ``names`` within ``max_drop`` that ``key`` ranks first (smallest)."""
    ok = [n for n in names if rows[n]["metric_drop"] <= max_drop]
    return min(ok, key=lambda n: key(rows[n])) if ok else None
