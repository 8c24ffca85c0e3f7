"""The fallback encoding of per-layer precision against independent per-layer choices.

Both encodings search the same space otherwise (prune ratio 0/0.3/0.5, KD at T=4, alpha 0.5, so
only three students exist and both encodings share them from the cache), for the same number of
trials, from several seeds, with no recipes enqueued and no polishing, so the encoding alone differs.
The score is the hypervolume of the (metric drop, in-trial speed-up) front against the reference
point (drop ``--ref-drop``, speed-up 1.0): larger is better.

    python benchmarks/compare_encodings.py --workload mnist --trials 20 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _record import add_run_args, header, header_line, out_dir, quick_defaults  # noqa: E402


def hypervolume(points: list[tuple[float, float]], ref_drop: float) -> float:
    """Area dominated by (drop, speed-up) points, lower drop and higher speed-up better, above
    speed-up 1 and below ``ref_drop``."""
    pts = sorted((d, s) for d, s in points if d < ref_drop and s > 1.0)
    area, best = 0.0, 1.0
    # sweep drops from high to low would double count; sweep from low drop to high
    front = []
    for d, s in pts:
        if s > best:
            front.append((d, s))
            best = s
    for i, (d, s) in enumerate(front):
        nxt = front[i + 1][0] if i + 1 < len(front) else ref_drop
        area += (nxt - d) * (s - 1.0)
    return area


def search_points(w, space, profile, name: str, work: Path, *, n_trials: int, seed: int,
                  sampler: str = "tpe") -> list[tuple[float, float]]:
    """Run a search with no recipes, no polishing and no re-measuring (so only the knob under test
    differs) and return (metric drop, in-trial speed-up) of its completed trials, in trial order."""
    from autocl.evaluate import metric_drop
    from autocl.study import run_search

    r = run_search(w, space, profile, study_name=name, storage=f"sqlite:///{work / (name + '.db')}",
                   n_trials=n_trials, seed=seed, sampler=sampler, polish=False, remeasure=False, recipes=False)
    base = r.baseline["metric"]
    done = sorted((t for t in r.study.trials if t.state.name == "COMPLETE"), key=lambda t: t.number)
    return [(metric_drop(t.values[0], base, w.higher_is_better), t.user_attrs["speedup"][profile.name]) for t in done]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", default="mnist")
    parser.add_argument("--profile", default="cpu-edge-1t")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--ref-drop", type=float, default=0.05)
    add_run_args(parser, quick="8 trials, one seed")
    args = parser.parse_args()
    quick_defaults(args, parser, trials=8, seeds=[0])
    args.out = out_dir(args)
    from autocl.hardware import load_profile
    from autocl.space import SearchSpace
    from autocl.workloads import load_workload

    w = load_workload(args.workload)
    profile = load_profile(args.profile)
    work = Path(args.out) / "work"
    work.mkdir(parents=True, exist_ok=True)
    tag = time.strftime("%Y%m%d-%H%M%S")
    results: dict[str, list[float]] = {"fallbacks": [], "per_layer": []}
    for seed in args.seeds:
        for encoding in results:
            space = SearchSpace.model_validate({
                "prune": {"ratio": [0.0, 0.3, 0.5]},
                "distill": {"temperature": 4.0, "alpha": 0.5, "steps": 80, "lr": 0.002},
                "quant": {"precisions": ["int8", "fp32"] if encoding == "fallbacks" else ["fp32", "int8"],
                          "encoding": encoding, "fallback": {"precisions": ["fp32"], "max_layers": 3}},
            })
            name = f"enc-{args.workload}-{encoding}-s{seed}-{tag}"
            t0 = time.time()
            pts = search_points(w, space, profile, name, work, n_trials=args.trials, seed=seed)
            hv = hypervolume(pts, args.ref_drop)
            results[encoding].append(hv)
            print(f"seed {seed} {encoding:9s}: hypervolume {hv:.4f} ({len(pts)} trials, {time.time() - t0:.0f} s)",
                  flush=True)
    h = header(profile, quick=args.quick)
    lines = [f"# Precision encodings on {args.workload}, profile `{profile.name}`", "", header_line(h), "",
             f"Hypervolume of the (metric drop, speed-up) front, reference (drop {args.ref_drop}, 1.0x), after "
             f"{args.trials} trials; same space, no recipes, no polishing.", "",
             "| encoding | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean |", "|---|" + "---|" * (len(args.seeds) + 1)]
    for enc, hvs in results.items():
        lines.append(f"| {enc} | " + " | ".join(f"{h:.4f}" for h in hvs) + f" | {statistics.mean(hvs):.4f} |")
    (Path(args.out) / f"compare_encodings-{args.workload}.md").write_text("\n".join(lines) + "\n")
    (Path(args.out) / f"compare_encodings-{args.workload}.json").write_text(
        json.dumps({**h, "results": results}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
