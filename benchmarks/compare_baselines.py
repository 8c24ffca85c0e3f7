"""autocl against the strongest alternatives a user would try, measured in one run.

For each workload, in this order, on one hardware profile (default ``cpu-edge-1t``: 1 thread, batch 1):

1. **By hand** (``benchmarks/byhand.py``, the libraries alone): whole-model static int8 in the
   fastest format here (U8S8 per-channel; S8S8 too, to show it is slower), whole-model dynamic int8,
   and for the CNNs prune 30% and 50% + 4 epochs of KD + whole-model static int8, each timed.
2. **A peer tool** in its own virtual environment: Intel Neural Compressor's ONNX accuracy-aware
   tuning (``make peer-venv``), with its tuning time. A peer that cannot run prints its error.
3. **autocl**: ``run_search`` on the workload's space with ``--timeout`` and ``--max-drop``; its
   fastest front member within the drop is the row shown. The time at which the search first
   completed a member within the drop whose in-trial speed-up beat every by-hand recipe's is recorded.
4. One final measurement of every artifact, in interleaved rounds on the profile
   (``autocl.hardware.measure_many``), and the metric of each from an onnxruntime session.

Speed-ups are ratios to the fp32 model's median in that same final run. The metric drop is
``autocl.evaluate.metric_drop`` (0.01 = one accuracy point). Results go to ``benchmarks/results/``
(Markdown and JSON) with the command, the machine and the date.

    python benchmarks/compare_baselines.py --workloads mnist --timeout 20m
    python benchmarks/compare_baselines.py --workloads minilm --timeout 20m --profile cpu-local
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "benchmarks" / "peers"))

SPACES = {"digits": "default.yaml", "mnist": "default.yaml", "minilm": "minilm.yaml"}


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def byhand_recipes(w, comp, feeds, work: Path) -> dict[str, dict]:
    """name -> {"path", "seconds"}: the by-hand artifacts of :mod:`byhand`."""
    import torch

    import byhand

    fp32 = comp.baseline()
    out: dict[str, dict] = {}
    for name, fn in (("int8 static U8S8 per-channel", lambda p: byhand.int8_static(fp32, p, feeds)),
                     ("int8 static S8S8 per-channel", lambda p: byhand.int8_static(fp32, p, feeds, activations="s8")),
                     ("int8 dynamic", lambda p: byhand.int8_dynamic(fp32, p))):
        t0 = time.time()
        path = fn(work / (name.replace(" ", "-") + ".onnx"))
        out[name] = {"path": path, "seconds": time.time() - t0}
    if w.output_kind == "logits" and isinstance(w.example_input, torch.Tensor):
        x, y = w.train
        for ratio in (0.3, 0.5):
            _log(f"by hand: prune {ratio:.0%} + KD + int8")
            path, secs = byhand.prune_kd_int8(w.model, w.example_input, x, y, feeds, ratio, work)
            out[f"prune {ratio:.0%} + KD 4 epochs + int8 U8S8"] = {"path": path, "seconds": secs}
    return out


def peer(w, fp32: Path, feeds, baseline_metric: float, max_drop: float, work: Path, timeout_s: int) -> dict:
    import numpy as np

    from client import run_peer

    calib = {n: np.concatenate([f[n] for f in feeds]) for n in w.input_names}
    xs = w.validation[0] if isinstance(w.validation[0], tuple) else (w.validation[0],)
    val = dict(zip(w.input_names, xs))
    metric = "accuracy" if w.output_kind == "logits" else "cosine"
    # INC's tolerable loss is relative to the fp32 metric; autocl's drop is in the metric's units
    rel = max_drop / abs(baseline_metric) if baseline_metric else max_drop
    return run_peer("inc", fp32, calib, val, np.asarray(w.validation[1]), metric, rel, work / "inc.onnx", timeout_s)


def measure_all(paths: dict[str, Path], w, profile, rounds: int) -> dict[str, dict]:
    from autocl.hardware import measure_many

    feed = w.sample_feed(profile.batch_size)
    names = list(paths)
    per_round: dict[str, list[float]] = {n: [] for n in names}
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]  # drift hits every artifact alike
        for n, m in zip(order, measure_many([paths[n] for n in order], profile, feed, memory=False)):
            per_round[n].append(m.median_ms)
            samples[n].extend(m.samples_ms)
    out = {}
    for n in names:
        s = sorted(samples[n])
        q = statistics.quantiles(s, n=4) if len(s) > 1 else [s[0]] * 3
        out[n] = {"latency_ms": statistics.median(per_round[n]), "latency_iqr_ms": q[2] - q[0], "samples": len(s)}
    return out


def first_beating(study, profile: str, max_drop: float, baseline_metric: float, higher: bool, best_recipe: float,
                  started: datetime) -> dict | None:
    """The first completed trial within the drop whose in-trial speed-up beat ``best_recipe``."""
    from autocl.evaluate import metric_drop

    done = [t for t in study.trials if t.state.name == "COMPLETE" and t.datetime_complete]
    for t in sorted(done, key=lambda t: t.datetime_complete):
        sp = t.user_attrs.get("speedup", {}).get(profile)
        if sp and metric_drop(t.values[0], baseline_metric, higher) <= max_drop and sp > best_recipe:
            return {"trial": t.number, "seconds": (t.datetime_complete.replace(tzinfo=timezone.utc) - started).total_seconds(),
                    "in_trial_speedup": sp}
    return None


def bench(name: str, args, profile, work: Path) -> dict:
    from autocl.compress import Compressor
    from autocl.evaluate import evaluate_artifact, metric_drop
    from autocl.report import pick, study_data
    from autocl.runtime import cache_dir
    from autocl.space import load_space
    from autocl.study import run_search
    from autocl.workloads import load_workload

    w = load_workload(name)
    comp = Compressor(w, cache_dir(), seed=args.seed)
    fp32 = comp.baseline()
    feeds = w.calibration_feeds(128)
    base_metric = evaluate_artifact(fp32, w, profile)
    _log(f"{name}: fp32 {w.metric_name} {base_metric:.4f}; by-hand recipes")
    recipes = byhand_recipes(w, comp, feeds, work)
    _log("peer: Intel Neural Compressor (accuracy-aware tuning)")
    peer_result = peer(w, fp32, feeds, base_metric, args.max_drop, work, int(args.peer_timeout))
    if "error" in peer_result:
        print(f"peer {peer_result['tool']} could not run: {peer_result['error']}", flush=True)
    # the recipes' speed-ups before the search, to time when the search first beats all of them
    pre = measure_all({"fp32": fp32, **{k: v["path"] for k, v in recipes.items()}}, w, profile, 3)
    recipe_metrics = {k: evaluate_artifact(v["path"], w, profile) for k, v in recipes.items()}
    ok = [k for k in recipes if metric_drop(recipe_metrics[k], base_metric, w.higher_is_better) <= args.max_drop]
    best_recipe = max((pre["fp32"]["latency_ms"] / pre[k]["latency_ms"] for k in ok), default=1.0)
    _log(f"best by-hand recipe within the drop: {best_recipe:.2f}x; autocl search for {args.timeout} s")
    space = load_space(ROOT / "search_spaces" / SPACES[name])
    study_name = f"bench-{name}-{args.tag}"
    storage = f"sqlite:///{work / (study_name + '.db')}"
    started = datetime.now(timezone.utc)
    t0 = time.time()
    result = run_search(w, space, profile, study_name=study_name, storage=storage, n_trials=None,
                        timeout=args.timeout, max_drop=args.max_drop, seed=args.seed)
    search_seconds = time.time() - t0
    study = result.study
    data = study_data(study, profile.name)
    try:
        chosen = pick(data, f"fastest-within:{args.max_drop}").trial
    except Exception as exc:  # no member within the drop: say so, show the most accurate
        print(f"autocl: {exc}", flush=True)
        chosen = max(data.front, key=lambda t: (t.metric if w.higher_is_better else -t.metric))
    trial = study.trials[chosen.number]
    beat = first_beating(study, profile.name, args.max_drop, base_metric, w.higher_is_better, best_recipe, started)
    paths = {"fp32": fp32, **{k: v["path"] for k, v in recipes.items()}}
    if "error" not in peer_result:
        paths["INC accuracy-aware tuning"] = work / "inc.onnx"
    paths["autocl"] = Path(trial.user_attrs["artifact_path"])
    _log("final interleaved measurement")
    lat = measure_all(paths, w, profile, args.rounds)
    rows = {}
    for k, p in paths.items():
        m = evaluate_artifact(p, w, profile)
        rows[k] = {"metric": m, "metric_drop": metric_drop(m, base_metric, w.higher_is_better), **lat[k],
                   "speedup": lat["fp32"]["latency_ms"] / lat[k]["latency_ms"], "size_kb": p.stat().st_size / 1024,
                   "seconds": (recipes.get(k) or {}).get("seconds")}
    rows["autocl"]["seconds"] = search_seconds
    if "INC accuracy-aware tuning" in rows:
        rows["INC accuracy-aware tuning"]["seconds"] = peer_result.get("tuning_seconds")
    within = {k: r for k, r in rows.items() if k not in ("fp32", "autocl") and r["metric_drop"] <= args.max_drop}
    best_other = max(within, key=lambda k: within[k]["speedup"]) if within else None
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    return {
        "workload": name, "metric": w.metric_name, "space": SPACES[name], "profile": profile.name,
        "max_drop": args.max_drop, "timeout_s": args.timeout, "search_seconds": round(search_seconds, 1),
        "trials": len(study.trials), "complete": len(complete),
        "polished": sum(1 for t in complete if "polish_of" in t.user_attrs),
        "recipes_in_search": sum(1 for t in study.trials if t.user_attrs.get("recipe")),
        "autocl_trial": chosen.number, "autocl_config": trial.user_attrs.get("config"),
        "autocl_bits": trial.user_attrs.get("bits"), "autocl_pruning": trial.user_attrs.get("pruning"),
        "autocl_polish_of": trial.user_attrs.get("polish_of"),
        "best_byhand_before_search": best_recipe, "first_beating_every_recipe": beat,
        "best_other": best_other,
        "autocl_vs_best_other": rows["autocl"]["speedup"] / within[best_other]["speedup"] if best_other else None,
        "peer": peer_result, "rows": rows, "study": storage,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _markdown(runs: list[dict]) -> str:
    lines = ["# autocl against the strongest by-hand recipes and a peer tool", "",
             "Each workload's artifacts are measured in one final run, in interleaved rounds, on the profile named; "
             "speed-ups are ratios to the fp32 model in that run. Δ metric is `autocl.evaluate.metric_drop` "
             "(0.01 = one accuracy point). `seconds` is the time each took to produce (by hand: the recipe; INC: "
             "its tuning; autocl: the whole search). See `benchmarks/compare_baselines.py` for what each row is.", ""]
    for run in runs:
        r, d = run["result"], run["device"]
        lines += [f"## {r['workload']} on `{r['profile']}` — metric: {r['metric']}", "",
                  f"Command: `{run['command']}` — {d.get('cpu')} ({d.get('cores')} cores), onnxruntime "
                  f"{d.get('onnxruntime')}, load average {run.get('load')}, {r['date']}.", ""]
        head = ["model", "metric", "Δ metric", "latency ms", "± IQR", "speed-up", "size KB", "seconds"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for k, row in r["rows"].items():
            mark = "**" if k == "autocl" else ""
            secs = f"{row['seconds']:.0f}" if row.get("seconds") is not None else ""
            lines.append("| " + " | ".join([f"{mark}{k}{mark}", f"{row['metric']:.4f}", f"{-row['metric_drop']:+.4f}",
                                            f"{row['latency_ms']:.4f}", f"{row['latency_iqr_ms']:.4f}",
                                            f"{mark}{row['speedup']:.2f}x{mark}", f"{row['size_kb']:.0f}", secs]) + " |")
        peer_r = r["peer"]
        beat = r["first_beating_every_recipe"]
        cfg = r["autocl_config"] or {}
        pruning = r.get("autocl_pruning") or {}
        lines += ["",
                  f"- autocl: trial {r['autocl_trial']} of {r['trials']} ({r['complete']} complete, "
                  f"{r['recipes_in_search']} recipes enqueued first, {r['polished']} polished) in "
                  f"{r['search_seconds']:.0f} s: prune {cfg.get('prune', {}).get('ratio')} (MACs kept "
                  f"{pruning.get('kept_macs')}), T {cfg.get('distill', {}).get('temperature')}, distillation steps "
                  f"{cfg.get('distill', {}).get('steps')}{' (polished trial ' + str(r['autocl_polish_of']) + ')' if r['autocl_polish_of'] is not None else ''}, "
                  f"bits `{r['autocl_bits']}`.",
                  f"- Best other within {r['max_drop']}: {r['best_other']}; autocl / best other = "
                  + (f"**{r['autocl_vs_best_other']:.2f}x**." if r['autocl_vs_best_other'] else "n/a."),
                  "- First search member within the drop faster (in-trial speed-up) than every by-hand recipe "
                  f"({r['best_byhand_before_search']:.2f}x before the search): "
                  + (f"trial {beat['trial']} after {beat['seconds']:.0f} s ({beat['in_trial_speedup']:.2f}x)." if beat else "none."),
                  "- Peer: " + (f"INC {peer_r.get('version')}: {peer_r.get('config')}, {peer_r.get('trials')} trial(s)."
                                if "error" not in peer_r else f"{peer_r['tool']} could not run: {peer_r['error']}"), ""]
    return "\n".join(lines) + "\n"


def _duration(text: str) -> float:
    from autocl.cli._search import parse_duration

    return float(parse_duration(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", nargs="+", default=["mnist"])
    parser.add_argument("--profile", default="cpu-edge-1t", help="profile name in hardware_profiles/ or a YAML path")
    parser.add_argument("--timeout", default="20m", help="autocl's search budget (e.g. 20m)")
    parser.add_argument("--max-drop", type=float, default=0.01, help="allowed metric drop (0.01 = one point)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved measurement rounds")
    parser.add_argument("--peer-timeout", default="15m")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default=time.strftime("%Y%m%d-%H%M%S"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    args.timeout = _duration(args.timeout)
    args.peer_timeout = _duration(args.peer_timeout)
    from autocl.hardware import device_description, load_profile

    profile = load_profile(args.profile)
    out_dir = Path(args.out)
    work = out_dir / "work"  # study databases and by-hand models: not committed (see .gitignore)
    work.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/compare_baselines.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    for name in args.workloads:
        result = bench(name, args, profile, work)
        device = {**device_description(profile), "python": platform.python_version()}
        run = {"command": command, "device": device, "load": [round(x, 2) for x in os.getloadavg()], "result": result}
        (out_dir / f"compare_baselines-{name}.json").write_text(json.dumps(run, indent=1, default=str))
        print(_markdown([run]), flush=True)
    runs = [json.loads(p.read_text()) for p in sorted(out_dir.glob("compare_baselines-*.json"))]
    runs = [r for r in runs if "rows" in r.get("result", {}) and "best_other" in r["result"]]
    order = {"digits": 0, "mnist": 1, "minilm": 2}
    runs.sort(key=lambda run: (order.get(run["result"]["workload"], 9), run["result"]["date"]))
    (out_dir / "compare_baselines.md").write_text(_markdown(runs))


if __name__ == "__main__":
    main()
