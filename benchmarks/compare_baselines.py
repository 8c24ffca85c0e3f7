"""autocl against the strongest alternatives a user would try, measured in one run.

For each workload, in this order, on one hardware profile (default ``cpu-edge-1t``: 1 thread, batch 1):

0. **A dry run of every peer** (``--peers``, default INC and Olive): its venv is there and the tool
   imports. A peer that cannot run stops the benchmark here with the reason (exit 2), unless
   ``--allow-missing-peer NAME``: then the result names it at the top of its table and leaves
   "autocl / best other" empty, since the comparison lacks a competitor.
1. **By hand** (``benchmarks/byhand.py``, the libraries alone): whole-model static int8 in the
   fastest format here (U8S8 per-channel; S8S8 too, to show it is slower), whole-model dynamic int8;
   for the CNNs prune 30% and 50% + 4 epochs of KD + whole-model static int8; for transformers
   onnxruntime's transformer optimizer + ``quantize_dynamic``, the faster of its op-type variants
   within the drop (both are measured before the search). Each is timed.
2. **Peer tools**, each in its own virtual environment (``make peer-venv``), with their tuning time:
   Intel Neural Compressor's accuracy-aware tuning, and Olive's automatic optimization for the CPU
   (its transformer fusions for transformers, then its quantization search, the fastest candidate
   within the same bound). A peer that fails here also stops the benchmark, before the search.
3. **autocl**: ``run_search`` on the workload's space with ``--timeout`` and ``--max-drop``. Every
   member of its front is a row; the fastest within the drop in the final run is "autocl". The time
   at which the search first completed a member within the drop whose in-trial speed-up beat every
   by-hand recipe's is recorded.
4. One final measurement of every row, in interleaved rounds on the profile
   (``_record.measure_all``), the metric of each from an onnxruntime session, its file size and its
   shipped (deflated) size (``autocl.compress.size``).

Speed-ups are ratios to the fp32 model's median in that same final run. The metric drop is
``autocl.evaluate.metric_drop`` (0.01 = one accuracy point). Results go to ``--out`` (default
``benchmarks/results/``): Markdown and JSON with ``_record.header`` (command, machine, git commit,
peers' versions), and a fidelity-vs-speed figure of the front with the other rows on it.

    python benchmarks/compare_baselines.py --workloads mnist --timeout 20m
    python benchmarks/compare_baselines.py --workloads minilm --timeout 20m --profile cpu-local
    python benchmarks/compare_baselines.py --workloads vit --timeout 10m --profile cpu-local
    python benchmarks/compare_baselines.py --workloads mnist --quick --out /tmp/bench   # about 10 minutes
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "benchmarks" / "peers"))

from _peer_rows import PEERS, check_peers, run_peers, transformer_shape, versions  # noqa: E402
from _record import add_run_args, header, header_line, log, measure_all, out_dir, quick_defaults  # noqa: E402

SPACES = {"digits": "default.yaml", "mnist": "default.yaml", "minilm": "minilm.yaml", "vit": "vit.yaml"}
FUSED = "ORT transformer optimizer + quantize_dynamic"


def byhand_recipes(w, comp, feeds, work: Path) -> dict[str, dict]:
    """name -> {"path", "seconds"}: the by-hand artifacts of :mod:`byhand`."""
    import byhand
    import torch

    fp32 = comp.baseline()
    out: dict[str, dict] = {}
    for name, fn in (("int8 static U8S8 per-channel", lambda p: byhand.int8_static(fp32, p, feeds)),
                     ("int8 static S8S8 per-channel", lambda p: byhand.int8_static(fp32, p, feeds, activations="s8")),
                     ("int8 dynamic", lambda p: byhand.int8_dynamic(fp32, p))):
        t0 = time.time()
        path = fn(work / f"{w.name}-{name.replace(' ', '-')}.onnx")
        out[name] = {"path": path, "seconds": time.time() - t0}
    shape = transformer_shape(w)
    # the CNN recipe (torch-pruning's channel pruning of a ResNet-like model); a transformer's by-hand
    # recipes are onnxruntime's transformer optimizer + quantize_dynamic below
    if w.output_kind == "logits" and isinstance(w.example_input, torch.Tensor) and not shape:
        x, y = w.train
        for ratio in (0.3, 0.5):
            log(f"by hand: prune {ratio:.0%} + KD + int8")
            path, secs = byhand.prune_kd_int8(w.model, w.example_input, x, y, feeds, ratio, work)
            out[f"prune {ratio:.0%} + KD 4 epochs + int8 U8S8"] = {"path": path, "seconds": secs}
    if shape:
        log(f"by hand: {FUSED} ({shape})")
        for variant, v in byhand.ort_fused_dynamic(fp32, work, **shape).items():
            out[f"{FUSED} ({variant})"] = v
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


def bench(name: str, args, profile, work: Path, checked: dict[str, dict]) -> dict:
    from autocl.compress import Compressor
    from autocl.compress.size import compressed_size
    from autocl.evaluate import evaluate_artifact, metric_drop
    from autocl.report import study_data
    from autocl.runtime import cache_dir
    from autocl.space import load_space
    from autocl.study import run_search
    from autocl.workloads import load_workload

    w = load_workload(name)
    comp = Compressor(w, cache_dir().resolve(), seed=args.seed)
    fp32 = comp.baseline().resolve()
    feeds = w.calibration_feeds(128)
    base_metric = evaluate_artifact(fp32, w, profile)
    drop = lambda m: metric_drop(m, base_metric, w.higher_is_better)  # noqa: E731
    log(f"{name}: fp32 {w.metric_name} {base_metric:.4f}; by-hand recipes")
    recipes = {} if args.peers_only else byhand_recipes(w, comp, feeds, work)
    peers = run_peers(w, fp32, feeds, base_metric, args, work, checked, profile.batch_size)
    if args.peers_only:
        return {"workload": name, "baseline_metric": base_metric, "peers": peers}
    # the recipes' speed-ups before the search, to time when the search first beats all of them
    pre = measure_all({"fp32": fp32, **{k: v["path"] for k, v in recipes.items()}}, w, profile, args.pre_rounds)
    recipe_metrics = {k: evaluate_artifact(v["path"], w, profile) for k, v in recipes.items()}
    ok = [k for k in recipes if drop(recipe_metrics[k]) <= args.max_drop]
    speed = {k: pre["fp32"]["latency_ms"] / pre[k]["latency_ms"] for k in recipes}
    fused = [k for k in recipes if k.startswith(FUSED)]
    fused_variants = {k: {"metric": recipe_metrics[k], "pre_speedup": speed[k],
                          "fused_ops": recipes[k].get("fused")} for k in fused}
    if fused:  # the by-hand user keeps the fastest fused variant within the drop (the most faithful if none is)
        keep = max(fused, key=lambda k: (k in ok, speed[k] if k in ok else recipe_metrics[k]))
        recipes = {k: v for k, v in recipes.items() if k not in fused or k == keep}
    best_recipe = max((speed[k] for k in ok if k in recipes), default=1.0)
    log(f"best by-hand recipe within the drop: {best_recipe:.2f}x; autocl search for {args.timeout:.0f} s")
    space = load_space(ROOT / "search_spaces" / SPACES[name])
    study_name = f"bench-{name}-{args.tag}"
    storage = f"sqlite:///{work / (study_name + '.db')}"
    started = datetime.now(timezone.utc)
    t0 = time.time()
    result = run_search(w, space, profile, study_name=study_name, storage=storage, n_trials=None,
                        timeout=args.timeout, max_drop=args.max_drop, seed=args.seed)
    search_seconds = time.time() - t0
    study = result.study
    front = {f"autocl trial {t.number}": study.trials[t.number] for t in study_data(study, profile.name).front}
    gone = [k for k, t in front.items() if not Path(t.user_attrs.get("artifact_path", "")).is_file()]
    front = {k: t for k, t in front.items() if k not in gone}  # an artifact the cache no longer holds
    beat = first_beating(study, profile.name, args.max_drop, base_metric, w.higher_is_better, best_recipe, started)
    paths: dict[str, Path] = {"fp32": fp32, **{k: Path(v["path"]) for k, v in recipes.items()}}
    kinds = {"fp32": "fp32", **dict.fromkeys(recipes, "by hand")}
    for tool, r in peers.items():
        if "path" in r:
            paths[PEERS[tool]], kinds[PEERS[tool]] = Path(r["path"]), "peer"
    for k, t in front.items():
        paths[k], kinds[k] = Path(t.user_attrs["artifact_path"]).resolve(), "autocl"
    log(f"final interleaved measurement of {len(paths)} artifacts, {args.rounds} rounds")
    lat = measure_all(paths, w, profile, args.rounds)
    rows = {}
    for k, p in paths.items():
        m = evaluate_artifact(p, w, profile)
        rows[k] = {"metric": m, "metric_drop": drop(m), **lat[k],
                   "speedup": lat["fp32"]["latency_ms"] / lat[k]["latency_ms"],
                   "file_kb": p.stat().st_size / 1024, "shipped_kb": compressed_size(p) / 1024,
                   "seconds": (recipes.get(k) or {}).get("seconds")}
    for tool, r in peers.items():
        if PEERS[tool] in rows:
            rows[PEERS[tool]]["seconds"] = r.get("tuning_seconds")
    within = lambda kind: [k for k in rows if kinds[k] == kind and rows[k]["metric_drop"] <= args.max_drop]  # noqa: E731
    fastest = lambda ks: max(ks, key=lambda k: rows[k]["speedup"]) if ks else None  # noqa: E731
    autocl_row = fastest(within("autocl"))
    if autocl_row is None and front:  # no member within the drop: the most accurate is shown
        autocl_row = min(front, key=lambda k: rows[k]["metric_drop"])
        print(f"autocl: no front member within a drop of {args.max_drop}", flush=True)
    if autocl_row:
        rows[autocl_row]["seconds"] = search_seconds
    best_other = fastest(within("by hand") + within("peer"))
    missing = {tool: r["error"] for tool, r in peers.items() if "error" in r}
    ratio = (rows[autocl_row]["speedup"] / rows[best_other]["speedup"]
             if autocl_row and best_other and not missing else None)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    trial = front[autocl_row] if autocl_row else None
    attrs = trial.user_attrs if trial else {}
    return {
        "workload": name, "metric": w.metric_name, "space": SPACES[name], "profile": profile.name,
        "max_drop": args.max_drop, "timeout_s": args.timeout, "search_seconds": round(search_seconds, 1),
        "trials": len(study.trials), "complete": len(complete),
        "failed": sum(1 for t in study.trials if t.state.name == "FAIL"),
        "polished": sum(1 for t in complete if "polish_of" in t.user_attrs),
        "recipes_in_search": sum(1 for t in study.trials if t.user_attrs.get("recipe")),
        "autocl_row": autocl_row, "autocl_trial": trial.number if trial else None,
        "autocl_config": attrs.get("config"), "autocl_bits": attrs.get("bits"),
        "autocl_pruning": attrs.get("pruning"), "autocl_polish_of": attrs.get("polish_of"),
        "front_missing_artifacts": gone, "fused_variants": fused_variants,
        "best_byhand_before_search": best_recipe, "first_beating_every_recipe": beat,
        "best_other": best_other, "missing_peers": missing, "autocl_vs_best_other": ratio,
        "peers": peers, "row_kinds": kinds, "rows": rows, "study": storage,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _fmt_row(k: str, row: dict, chosen: str | None) -> str:
    mark = "**" if k == chosen else ""
    secs = f"{row['seconds']:.0f}" if row.get("seconds") is not None else ""
    shipped = f"{row['shipped_kb']:.0f}" if row.get("shipped_kb") is not None else ""
    return "| " + " | ".join([f"{mark}{k}{mark}", f"{row['metric']:.4f}", f"{-row['metric_drop']:+.4f}",
                              f"{row['latency_ms']:.4f}", f"{row['latency_iqr_ms']:.4f}",
                              f"{mark}{row['speedup']:.2f}x{mark}", f"{row.get('file_kb', row.get('size_kb')):.0f}",
                              shipped, secs]) + " |"


def _markdown(runs: list[dict]) -> str:
    lines = ["# autocl against the strongest by-hand recipes and the peer tools", "",
             "Each workload's artifacts are measured in one final run, in interleaved rounds, on the profile named; "
             "speed-ups are ratios to the fp32 model in that run. Δ metric is `autocl.evaluate.metric_drop` "
             "(0.01 = one accuracy point). File KB is the ONNX file; shipped KB its deflated size "
             "(`autocl.compress.size`). `seconds` is the time each took to produce (by hand: the recipe; a peer: "
             "its tuning; autocl: the whole search). See `benchmarks/compare_baselines.py` for what each row is.", ""]
    for run in runs:
        r = run["result"]
        chosen = r.get("autocl_row", "autocl")
        lines += [f"## {r['workload']} on `{r['profile']}` — metric: {r['metric']}", "",
                  header_line({**run, "date": run.get("date") or r.get("date")}), ""]
        for tool, error in (r.get("missing_peers") or {}).items():
            lines += [f"**Missing peer: {tool}** ({error}). It was allowed to be missing (`--allow-missing-peer "
                      f"{tool}`): this table compares autocl with fewer tools than asked, and autocl / best other "
                      "is left empty.", ""]
        head = ["model", "metric", "Δ metric", "latency ms", "± IQR", "speed-up", "file KB", "shipped KB", "seconds"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += [_fmt_row(k, row, chosen) for k, row in r["rows"].items()]
        beat = r["first_beating_every_recipe"]
        cfg = r["autocl_config"] or {}
        pruning = r.get("autocl_pruning") or {}
        ratio = r["autocl_vs_best_other"]
        lines += ["",
                  f"- autocl ({chosen}): trial {r['autocl_trial']} of {r['trials']} ({r['complete']} complete, "
                  f"{r.get('failed', '?')} failed, {r['recipes_in_search']} recipes enqueued first, {r['polished']} "
                  f"polished) in {r['search_seconds']:.0f} s: prune {cfg.get('prune', {}).get('ratio')} (MACs kept "
                  f"{pruning.get('kept_macs')}), distillation steps {cfg.get('distill', {}).get('steps')}"
                  f"{' (polished trial ' + str(r['autocl_polish_of']) + ')' if r['autocl_polish_of'] is not None else ''}, "
                  f"bits `{r['autocl_bits']}`.",
                  f"- Best other within {r['max_drop']}: {r['best_other']}; autocl / best other = "
                  + (f"**{ratio:.2f}x**." if ratio else "empty (a peer is missing)." if r.get("missing_peers")
                     else "n/a."),
                  "- First search member within the drop faster (in-trial speed-up) than every by-hand recipe "
                  f"({r['best_byhand_before_search']:.2f}x before the search): "
                  + (f"trial {beat['trial']} after {beat['seconds']:.0f} s ({beat['in_trial_speedup']:.2f}x)." if beat else "none.")]
        for k, v in (r.get("fused_variants") or {}).items():
            lines.append(f"- {k}: {r['metric']} {v['metric']:.4f}, {v['pre_speedup']:.2f}x before the search"
                         f"{' (kept)' if k in r['rows'] else ''}; fused by the optimizer: {v['fused_ops']}.")
        peers = r.get("peers") or ({"inc": r["peer"]} if "peer" in r else {})
        for tool, p in peers.items():
            lines.append(f"- Peer {tool}: " + (f"{p.get('version')}: {p.get('config')}, {p.get('trials')} trial(s)."
                                               if "error" not in p else f"could not run: {p['error']}"))
        if r.get("front_missing_artifacts"):
            lines.append(f"- Front members whose artifact the cache no longer held: {r['front_missing_artifacts']}.")
        lines.append("")
    return "\n".join(lines) + "\n"


def _duration(text: str) -> float:
    from autocl.cli._search import parse_duration

    return float(parse_duration(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", nargs="+", default=["mnist"], choices=sorted(SPACES))
    parser.add_argument("--profile", default="cpu-edge-1t", help="profile name in hardware_profiles/ or a YAML path")
    parser.add_argument("--timeout", default="20m", help="autocl's search budget (e.g. 20m)")
    parser.add_argument("--max-drop", type=float, default=0.01, help="allowed metric drop (0.01 = one point)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the final measurement")
    parser.add_argument("--pre-rounds", type=int, default=3, help="interleaved rounds of the recipes before the search")
    parser.add_argument("--peers", nargs="*", default=list(PEERS), choices=sorted(PEERS))
    parser.add_argument("--allow-missing-peer", action="append", default=[], choices=sorted(PEERS), metavar="NAME",
                        help="go on when this peer cannot run; the result names it and leaves autocl / best other "
                             "empty (repeatable)")
    parser.add_argument("--peer-timeout", default="15m")
    parser.add_argument("--peer-trials", type=int, default=20, help="most configurations each peer may try")
    parser.add_argument("--peers-only", action="store_true",
                        help="run the peers' dry runs and tunings alone, print their results, write nothing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default=time.strftime("%Y%m%d-%H%M%S"))
    # the peers keep their whole budget in a quick run: INC needs 13 trials to reach a config within 0.01 on MiniLM
    add_run_args(parser, quick="a 3-minute search, 3 final rounds, 2 before the search")
    args = parser.parse_args()
    quick_defaults(args, parser, timeout="3m", rounds=3, pre_rounds=2)
    args.timeout = _duration(args.timeout)
    args.peer_timeout = _duration(args.peer_timeout)
    from autocl.hardware import load_profile

    profile = load_profile(args.profile)
    out = out_dir(args)
    work = out / "work"  # study databases and by-hand models: not committed (see .gitignore)
    work.mkdir(parents=True, exist_ok=True)
    checked = check_peers(args.peers, set(args.allow_missing_peer))  # before anything long
    import _front_figure

    for name in args.workloads:
        result = bench(name, args, profile, work, checked)
        if args.peers_only:
            print(json.dumps({**result, "versions": versions(checked)}, indent=1, default=str), flush=True)
            continue
        run = {**header(profile, versions(checked), quick=args.quick), "result": result}
        (out / f"compare_baselines-{name}.json").write_text(json.dumps(run, indent=1, default=str))
        _front_figure.write(result, out / f"compare_baselines_front-{name}")
        print(_markdown([run]), flush=True)
    if args.peers_only:
        return
    runs = [json.loads(p.read_text()) for p in sorted(out.glob("compare_baselines-*.json"))]
    runs = [r for r in runs if "rows" in r.get("result", {}) and "best_other" in r["result"]]
    order = {"digits": 0, "mnist": 1, "minilm": 2, "vit": 3}
    runs.sort(key=lambda run: (order.get(run["result"]["workload"], 9), run["result"]["date"]))
    (out / "compare_baselines.md").write_text(_markdown(runs))


if __name__ == "__main__":
    main()
