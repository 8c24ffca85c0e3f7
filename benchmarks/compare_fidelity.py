"""Screen-and-polish against the fidelity ladder, same wall-clock budget, several seeds and cases.

For each case (a workload spec: ``mnist``, ``mnist?train_limit=512``, ``minilm``) and seed, two
searches run for ``--timeout`` each on the same profile: today's scheme (the workload's space:
short screening + polishing) and the ladder (the same space with ``distill.fidelity`` instead of
``steps`` and ``polish``). For each search it reports:

* the hypervolume of its (metric drop, in-trial speed-up) front (``compare_encodings.hypervolume``,
  reference drop ``--ref-drop``, speed-up 1);
* its fastest member within ``--max-drop``, re-measured with every other run's of that case, the
  fp32 model and the by-hand recipes in **one final interleaved run** (speed-ups are ratios to fp32
  in that run);
* when it first completed a member within the drop that beat every by-hand recipe's speed-up;
* failed trials, trials per rung, and on the ladder the Spearman rank correlation between each
  student's metric after adaptive batch norm and after the last rung it reached.

    python benchmarks/compare_fidelity.py                    # 20 min per search, 2 seeds, 3 cases
    python benchmarks/compare_fidelity.py --quick            # mnist?train_limit=512, 1 seed, 4 min
    python benchmarks/compare_fidelity.py --cases minilm --profile cpu-local --timeout 900 --tag minilm
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SPACES = {"mnist": "default.yaml", "digits": "default.yaml", "minilm": "minilm.yaml"}
RUNGS = {"mnist": [80, 320, 1280], "digits": [40, 160, 640], "minilm": [60, 180, 512]}
"""Each case's ladder; its top rung is at most the space's polish cap (distill.polish.max_steps; MiniLM: 512)."""


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def spaces(case: str, rungs: list[int] | None, eta: int):
    """(screen-and-polish space, ladder space) of a case: the same knobs, another distillation plan."""
    from autocl.space import SearchSpace, load_space

    base = case.partition("?")[0]
    polish = load_space(ROOT / "search_spaces" / SPACES[base])
    data = polish.model_dump(mode="json")
    data["name"] = f"{polish.name}-ladder"
    data["distill"]["fidelity"] = {"rungs": rungs or RUNGS[base], "eta": eta}
    return polish, SearchSpace.model_validate(data)


def spearman_abn(study) -> dict:
    """Spearman rho between each ladder student's metric after adaptive BN (its rung-0 trial) and
    after the last rung it reached (the end of its chain of promoted twins)."""
    from scipy.stats import spearmanr

    done = [t for t in study.trials if t.state.name == "COMPLETE" and t.user_attrs.get("fidelity")]
    twin = {t.user_attrs["rung_of"]: t for t in done if "rung_of" in t.user_attrs}
    pts, seen = [], set()
    for t in done:
        fid = t.user_attrs["fidelity"]
        if fid.get("rung") != 0 or fid.get("adapted_metric") is None or t.user_attrs.get("student_key") in seen:
            continue
        seen.add(t.user_attrs.get("student_key"))
        last = t
        while last.number in twin:
            last = twin[last.number]
        pts.append((fid["adapted_metric"], last.user_attrs["fidelity"]["metric"]))
    if len(pts) < 3:
        return {"students": len(pts), "rho": None}
    return {"students": len(pts), "rho": float(spearmanr([p[0] for p in pts], [p[1] for p in pts]).statistic)}


def search(
    w, spec: str, space, profile, name: str, work: Path, args, seed: int, best_recipe: float, base_metric: float
) -> dict:
    from compare_baselines import first_beating
    from compare_encodings import hypervolume

    from autocl.evaluate import metric_drop
    from autocl.report import pick, study_data
    from autocl.study import run_search
    from autocl.study._fidelity import rung_of

    storage = f"sqlite:///{work / (name + '.db')}"
    started = datetime.now(timezone.utc)
    t0 = time.time()
    result = run_search(
        w,
        space,
        profile,
        study_name=name,
        storage=storage,
        n_trials=None,
        timeout=args.timeout,
        max_drop=args.max_drop,
        seed=seed,
        remeasure=False,
        workload_spec=spec,
    )
    seconds = time.time() - t0
    study = result.study
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    pts = [
        (metric_drop(t.values[0], base_metric, w.higher_is_better), t.user_attrs["speedup"][profile.name])
        for t in done
        if t.user_attrs.get("speedup")
    ]
    data = study_data(study, profile.name)
    try:
        chosen = pick(data, f"fastest-within:{args.max_drop}").trial
        artifact = study.trials[chosen.number].user_attrs["artifact_path"]
    except Exception as exc:  # no member within the drop
        _log(f"{name}: {exc}")
        chosen, artifact = None, None
    rungs: dict[str, int] = {}
    for t in done:
        r = rung_of(t)
        rungs[str(r)] = rungs.get(str(r), 0) + 1
    return {
        "study": name,
        "storage": storage,
        "seconds": round(seconds, 1),
        "trials": len(study.trials),
        "complete": len(done),
        "failed": sum(1 for t in study.trials if t.state.name == "FAIL"),
        "polished": sum(1 for t in done if "polish_of" in t.user_attrs),
        "per_rung": rungs,
        "hypervolume": hypervolume(pts, args.ref_drop),
        "chosen": None
        if chosen is None
        else {
            "trial": chosen.number,
            "metric": chosen.metric,
            "steps": chosen.distill_steps,
            "prune": chosen.prune_ratio,
            "in_trial_speedup": chosen.speedup_search,
        },
        "artifact": artifact,
        "first_beating_every_recipe": first_beating(
            study, profile.name, args.max_drop, base_metric, w.higher_is_better, best_recipe, started
        ),
        "abn": spearman_abn(study) if space.distill.fidelity else None,
    }


def case(spec: str, args, profile, work: Path, tag: str) -> dict:
    from compare_baselines import byhand_recipes, measure_all

    from autocl.compress import Compressor
    from autocl.evaluate import evaluate_artifact, metric_drop
    from autocl.runtime import cache_dir
    from autocl.workloads import load_workload

    w = load_workload(spec)
    comp = Compressor(w, cache_dir())
    fp32 = comp.baseline()
    base_metric = evaluate_artifact(fp32, w, profile)
    _log(f"{spec}: fp32 {w.metric_name} {base_metric:.4f}; by-hand recipes")
    recipes = byhand_recipes(w, comp, w.calibration_feeds(128), work)
    pre = measure_all({"fp32": fp32, **{k: v["path"] for k, v in recipes.items()}}, w, profile, 3)
    ok = [
        k
        for k, v in recipes.items()
        if metric_drop(evaluate_artifact(v["path"], w, profile), base_metric, w.higher_is_better) <= args.max_drop
    ]
    best_recipe = max((pre["fp32"]["latency_ms"] / pre[k]["latency_ms"] for k in ok), default=1.0)
    polish, ladder = spaces(spec, args.rungs, args.eta)
    runs = []
    for seed in args.seeds:
        for scheme, space in (("screen+polish", polish), ("ladder", ladder)):
            name = f"fid-{spec.replace('?', '-').replace('=', '')}-{scheme.replace('+', '-')}-s{seed}-{tag}"
            _log(f"{name}: searching {args.timeout:.0f} s")
            runs.append(
                {
                    "scheme": scheme,
                    "seed": seed,
                    **search(w, spec, space, profile, name, work, args, seed, best_recipe, base_metric),
                }
            )
    paths = {"fp32": fp32, **{k: v["path"] for k, v in recipes.items()}}
    for r in runs:
        if r["artifact"]:
            paths[f"{r['scheme']} s{r['seed']}"] = Path(r["artifact"])
    _log(f"{spec}: one final interleaved measurement of {len(paths)} artifacts")
    lat = measure_all(paths, w, profile, args.rounds)
    final = {
        k: {
            "speedup": lat["fp32"]["latency_ms"] / lat[k]["latency_ms"],
            "metric_drop": metric_drop(evaluate_artifact(p, w, profile), base_metric, w.higher_is_better),
        }
        for k, p in paths.items()
    }
    return {"case": spec, "fp32_metric": base_metric, "best_recipe_before": best_recipe, "runs": runs, "final": final}


def _markdown(cases: list[dict], args, cpu: str) -> str:
    lines = [
        "# Screen-and-polish against the fidelity ladder",
        "",
        f"`{' '.join(shlex.quote(a) for a in ['python', *sys.argv])}`, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpu}; profile {args.profile}, "
        f"{args.timeout:.0f} s per search, --max-drop {args.max_drop}. Final speed-ups: one interleaved run "
        "per case, ratio to fp32 in that run. The machine was shared with other jobs.",
        "",
    ]
    for c in cases:
        lines += [
            f"## {c['case']} (fp32 {c['fp32_metric']:.4f}; best by-hand recipe within the drop "
            f"{c['best_recipe_before']:.2f}x before the search)",
            "",
            "| scheme | seed | trials (failed) | per rung | hypervolume | fastest within drop: trial, steps, drop "
            "| speed-up (final run) | beat every recipe after | ABN rho |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in c["runs"]:
            key = f"{r['scheme']} s{r['seed']}"
            ch, fin, beat = r["chosen"], c["final"].get(key), r["first_beating_every_recipe"]
            abn = r["abn"] or {}
            lines.append(
                f"| {r['scheme']} | {r['seed']} | {r['complete']} ({r['failed']}) | "
                f"{r['per_rung'] if r['scheme'] == 'ladder' else str(r['polished']) + ' polished'} | "
                f"{r['hypervolume']:.4f} | "
                + (
                    f"#{ch['trial']}, {ch['steps']}, {fin['metric_drop']:+.4f} | {fin['speedup']:.2f}x | "
                    if ch and fin
                    else "none | - | "
                )
                + (f"{beat['seconds']:.0f} s |" if beat else "never |")
                + (f" {abn['rho']:.3f} ({abn['students']}) |" if abn.get("rho") is not None else " - |")
            )
        lines += [
            "",
            "Recipes in the final run: "
            + ", ".join(
                f"{k} {v['speedup']:.2f}x ({v['metric_drop']:+.4f})"
                for k, v in c["final"].items()
                if k != "fp32" and not k.startswith(("screen", "ladder"))
            ),
            "",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=["mnist", "mnist?train_limit=512", "minilm"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per search")
    parser.add_argument("--profile", default="cpu-edge-1t")
    parser.add_argument("--max-drop", type=float, default=0.01)
    parser.add_argument("--ref-drop", type=float, default=0.05)
    parser.add_argument("--rungs", type=int, nargs="+", default=None, help="the ladder's rungs [default: per case]")
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="mnist?train_limit=512, seed 0, 4 min per search")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--tag", default="", help="suffix of the result files: compare_fidelity-TAG.md")
    args = parser.parse_args()
    if args.quick:
        args.cases, args.seeds, args.timeout, args.rounds = ["mnist?train_limit=512"], [0], 240.0, 10
    from fidelity_abn import cpu

    from autocl.hardware import load_profile

    profile = load_profile(args.profile)
    out = Path(args.out)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    tag = time.strftime("%Y%m%d-%H%M%S")
    cases = [case(spec, args, profile, work, tag) for spec in args.cases]
    name = "compare_fidelity" + (f"-{args.tag}" if args.tag else "") + ("-quick" if args.quick else "")
    text = _markdown(cases, args, cpu())
    (out / f"{name}.md").write_text(text)
    (out / f"{name}.json").write_text(json.dumps({"cases": cases, "cpu": cpu()}, indent=1, default=str))
    print(text)


if __name__ == "__main__":
    main()
