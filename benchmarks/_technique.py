"""One technique against the model without it, measured in one interleaved run.

``run`` (``technique_depth.py``, ``technique_lowrank.py``) and ``build_rows``/``write``/``best``
(``technique_qat.py``, ``technique_cluster.py``, ``technique_fuse.py``) share it; what a result records
and the interleaved measurement are ``_record``'s. For a workload and a hardware
profile (default ``cpu-local``: 1 thread, batch 8) it builds, through autocl's ``Compressor`` (the
path every search trial takes: prune -> depth/low rank -> distill -> export -> quantize):

* ``fp32``: the teacher exported as is;
* ``quantize_dynamic``: onnxruntime's whole-model dynamic int8, by hand (``benchmarks/byhand.py``);
* the best configuration without the technique (given by the caller, with where it comes from);
* each configuration with the technique, distilled for the steps given, its training time recorded.

Then every artifact's metric comes from an onnxruntime session on the validation split, and all are
measured in interleaved rounds (``_record.measure_all``). The table goes to
``<--out>/technique_<name>-<workload>.md`` (default ``benchmarks/results/``) with ``_record.header``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _record import RESULTS, header, header_line, log, measure_all  # noqa: E402


def run(technique: str, workload: str, profile_name: str, without: tuple[str, object, str],
        with_: list[tuple[str, object]], *, rounds: int, target: float | None, notes: list[str],
        out_dir: Path = RESULTS, quick: bool = False) -> dict:
    """Build, evaluate and measure; ``without`` is (label, config, where it comes from),
    ``with_`` is [(label, config)]. Returns the rows; writes the Markdown and JSON results to ``out_dir``."""
    import byhand

    from autocl.compress import Compressor
    from autocl.evaluate import evaluate_artifact
    from autocl.hardware import load_profile
    from autocl.runtime import cache_dir
    from autocl.workloads import load_workload

    profile = load_profile(profile_name)
    w = load_workload(workload)
    comp = Compressor(w, cache_dir())
    work = out_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    fp32 = comp.baseline()
    paths = {"fp32": fp32, "quantize_dynamic (whole model, by hand)": byhand.int8_dynamic(fp32, work / f"{workload}-dyn.onnx")}
    info: dict[str, dict] = {"fp32": {}, "quantize_dynamic (whole model, by hand)": {}}
    label, cfg, source = without
    for name, c in [(label, cfg), *with_]:
        log(f"building {name}")
        t0 = time.time()
        art = comp.artifact(c, stage=lambda s: log(f"  {s}"))
        secs = time.time() - t0
        student_metric = evaluate_artifact(comp.student_graph(art.student, c), w, profile) if c.trains else None
        paths[name] = art.path
        info[name] = {"seconds": None if art.student.reused else round(secs), "reused": art.student.reused,
                      "steps": c.distill.steps if c.trains else 0, "student_fp32_metric": student_metric,
                      "kept_macs": (art.student.achieved or {}).get("macs", 1.0), "structure": art.student.structure,
                      "config": c.to_dict()}
    out = out_dir / f"technique_{technique}-{workload}"
    earlier = json.loads(out.with_suffix(".json").read_text())["rows"] if out.with_suffix(".json").is_file() else {}
    for name, row in info.items():  # a cached student: keep the build time of the run that trained it
        before = earlier.get(name, {})
        if row.get("reused") and before.get("config") == row.get("config") and before.get("seconds") is not None:
            row["seconds"], row["trained_earlier"] = before["seconds"], before.get("trained_earlier", True)
    log("final interleaved measurement")
    lat = measure_all(paths, w, profile, rounds)
    rows = {}
    for name, p in paths.items():
        rows[name] = {"metric": evaluate_artifact(p, w, profile), **lat[name], "size_kb": p.stat().st_size / 1024,
                      **info[name]}
    dyn = rows["quantize_dynamic (whole model, by hand)"]["latency_ms"]
    for r in rows.values():
        r["speedup_vs_fp32"] = rows["fp32"]["latency_ms"] / r["latency_ms"]
        r["speedup_vs_dynamic"] = dyn / r["latency_ms"]
    result = {"technique": technique, "workload": workload, "metric": w.metric_name, "profile": profile.name,
              "threads": profile.threads, "batch": profile.batch_size, **header(profile, quick=quick),
              "without_source": source, "target": target, "rows": rows, "notes": notes}
    out.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str))
    text = markdown(result)
    out.with_suffix(".md").write_text(text)
    print(text, flush=True)
    return result


def _structure(s: dict | None) -> str:
    if not s:
        return ""
    parts = []
    if "depth" in s:
        d = s["depth"]
        parts.append("; ".join(f"kept {k} {v} (removed {d['removed'].get(k, [])}, {d['criterion']})"
                               for k, v in d["kept"].items()))
    if "lowrank" in s:
        plan = s["lowrank"]
        done = [n for n, e in plan.items() if e["factorized"]]
        left = [n for n, e in plan.items() if not e["factorized"]]
        ranks = sorted({f"{e['rank']}/{e['of']}" for e in plan.values() if e["factorized"]})
        parts.append(f"{len(done)} layers factorized (ranks {', '.join(ranks)})"
                     + (f", {len(left)} left whole (the pair would cost more MACs)" if left else ""))
    return "; ".join(parts)


def markdown(r: dict) -> str:
    lines = [f"# {r['technique']} on `{r['workload']}` — {r['metric']}", "",
             header_line(r) + f" Profile `{r['profile']}` ({r['threads']} thread, batch {r['batch']}).", "",
             "All rows measured in one interleaved run (`autocl.hardware.measure_many`, "
             "`_record.measure_all`); metrics from onnxruntime sessions on the validation split. "
             f"The row without the technique: {r['without_source']}", ""]
    head = ["model", "metric", "student fp32", "latency ms", "± IQR", "vs fp32", "vs quantize_dynamic", "MACs kept",
            "size KB", "distill steps", "build s"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in r["rows"].items():
        sm = row.get("student_fp32_metric")
        secs = row.get("seconds")
        lines.append("| " + " | ".join([
            name, f"{row['metric']:.4f}", f"{sm:.4f}" if sm is not None else "", f"{row['latency_ms']:.2f}",
            f"{row['latency_iqr_ms']:.2f}", f"{row['speedup_vs_fp32']:.2f}x", f"{row['speedup_vs_dynamic']:.2f}x",
            f"{100 * row.get('kept_macs', 1.0):.0f}%", f"{row['size_kb']:.0f}", str(row.get("steps") or ""),
            (f"{secs} (earlier run)" if row.get("trained_earlier") else "cached" if row.get("reused") else f"{secs}")
            if secs is not None or row.get("reused") else ""]) + " |")
    lines.append("")
    for name, row in r["rows"].items():
        s = _structure(row.get("structure"))
        if s:
            lines.append(f"- {name}: {s}.")
    if r.get("target") is not None:
        t = r["target"]
        members = {n: row for n, row in r["rows"].items() if n != "fp32"}
        ok = [n for n, row in members.items() if row["metric"] >= t and row["speedup_vs_dynamic"] >= 1.3]
        best = max((n for n, row in members.items() if row["metric"] >= t),
                   key=lambda n: r["rows"][n]["speedup_vs_dynamic"], default=None)
        lines.append(f"- Target (metric >= {t} and >= 1.3x faster than quantize_dynamic in this run): "
                     + (f"met by {', '.join(ok)}." if ok else
                        f"not met; the fastest row at metric >= {t} is {best!r}"
                        + (f" at {r['rows'][best]['speedup_vs_dynamic']:.2f}x." if best else ".")))
        for n, row in r["rows"].items():
            if row.get("steps") and row["metric"] < t:
                lines.append(f"  - {n}: {row['metric']:.4f} is {t - row['metric']:.4f} below {t} "
                             f"(fp32 student {row['student_fp32_metric']:.4f}) after {row['steps']} steps, "
                             f"at {row['speedup_vs_dynamic']:.2f}x quantize_dynamic.")
    lines += [f"- {n}" for n in r["notes"]]
    return "\n".join(lines) + "\n"


# ---- build named configurations, measure them in one run, write a table (QAT, clustering) ----

def build_rows(workload_name: str, configs: dict, profile_name: str, rounds: int, *,
               quick: bool = False) -> tuple[dict, dict]:
    """``configs``: row name -> CompressionConfig (``None``: the fp32 teacher). Returns the rows
    (metric, drop, latency, speed-up, sizes, build seconds, distillation steps) and facts of the run."""
    from autocl.compress import Compressor
    from autocl.compress.size import compressed_size
    from autocl.evaluate import evaluate_artifact, metric_drop
    from autocl.hardware import load_profile
    from autocl.runtime import cache_dir
    from autocl.workloads import load_workload

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
            built[name] = {"seconds": time.time() - t0, "steps": cfg.distill.steps if cfg.trains else 0,
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
             **header(profile, quick=quick)}
    return rows, facts


def write(name: str, title: str, intro: list[str], rows: dict, facts: dict, marks: dict[str, str],
          notes: list[str], out_dir: Path = RESULTS) -> Path:
    """Write ``<out_dir>/technique_<name>-<workload>.md`` (and .json) and print it."""
    head = ["model", facts["metric_name"], "Δ metric", "latency ms", "± IQR", "speed-up", "file KB",
            "compressed KB", "steps", "build s"]
    lines = [f"# {title}", "", *intro, "",
             header_line(facts) + f" Profile `{facts['profile']}`.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k, r in rows.items():
        label = f"{k} ({marks[k]})" if k in marks else k
        lines.append("| " + " | ".join([label, f"{r['metric']:.4f}", f"{-r['metric_drop']:+.4f}",
                                        f"{r['latency_ms']:.3f}", f"{r['latency_iqr_ms']:.3f}", f"{r['speedup']:.2f}x",
                                        f"{r['file_kb']:.0f}", f"{r['compressed_kb']:.0f}", str(r["steps"]),
                                        f"{r['seconds']:.0f}"]) + " |")
    lines += ["", *notes, ""]
    text = "\n".join(lines)
    out = out_dir / f"technique_{name}-{facts['workload']}"
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps({"command": facts["command"], "facts": facts, "rows": rows},
                                                   indent=1, default=str))
    print(text, flush=True)
    return out.with_suffix(".md")


def best(rows: dict, names: list[str], max_drop: float, key) -> str | None:
    """The row among ``names`` within ``max_drop`` that ``key`` ranks first (smallest)."""
    ok = [n for n in names if rows[n]["metric_drop"] <= max_drop]
    return min(ok, key=lambda n: key(rows[n])) if ok else None
