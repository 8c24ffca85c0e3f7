"""Which Optuna sampler autocl defaults to: hypervolume against trials, per sampler, several seeds.

Each sampler searches the same space (prune ratio 0-0.6, the model-wide precision and its
fallbacks, KD at T=4; no recipes, no polishing, so the sampler alone differs) on one workload. The
score is the hypervolume of the (metric drop, in-trial speed-up) front after N trials, reference
point (drop ``--ref-drop``, speed-up 1.0). The question the issue asks: does the default reach
random search's hypervolume at ``--long`` trials within ``--short`` trials?

    python benchmarks/compare_samplers.py --workload digits --samplers tpe random --short 30 --long 60
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", default="digits")
    parser.add_argument("--profile", default="cpu-edge-1t")
    parser.add_argument("--samplers", nargs="+", default=["tpe", "random"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--short", type=int, default=30)
    parser.add_argument("--long", type=int, default=60)
    parser.add_argument("--ref-drop", type=float, default=0.05)
    add_run_args(parser, quick="one seed, 8 and 16 trials")
    args = parser.parse_args()
    quick_defaults(args, parser, seeds=[0], short=8, long=16)
    args.out = out_dir(args)
    from compare_encodings import hypervolume, search_points

    from autocl.hardware import load_profile
    from autocl.space import SearchSpace
    from autocl.workloads import load_workload

    w = load_workload(args.workload)
    profile = load_profile(args.profile)
    work = Path(args.out) / "work"
    work.mkdir(parents=True, exist_ok=True)
    tag = time.strftime("%Y%m%d-%H%M%S")
    space = SearchSpace.model_validate({"prune": {"ratio": {"low": 0.0, "high": 0.6, "step": 0.1}},
                                        "distill": {"temperature": 4.0, "alpha": 0.5, "steps": 40, "lr": 0.002},
                                        "quant": {"precisions": ["int8", "fp32"]}})
    rows: dict[str, dict[str, list[float]]] = {}
    for sampler in args.samplers:
        rows[sampler] = {"short": [], "long": []}
        for seed in args.seeds:
            name = f"smp-{args.workload}-{sampler}-s{seed}-{tag}"
            t0 = time.time()
            pts = search_points(w, space, profile, name, work, n_trials=args.long, seed=seed, sampler=sampler)
            rows[sampler]["short"].append(hypervolume(pts[:args.short], args.ref_drop))
            rows[sampler]["long"].append(hypervolume(pts, args.ref_drop))
            print(f"{sampler:7s} seed {seed}: {rows[sampler]['short'][-1]:.4f} at {args.short} trials, "
                  f"{rows[sampler]['long'][-1]:.4f} at {len(pts)} ({time.time() - t0:.0f} s)", flush=True)
    h = header(profile, quick=args.quick)
    lines = [f"# Samplers on {args.workload}, profile `{profile.name}`", "", header_line(h), "",
             f"Hypervolume of the (metric drop, speed-up) front, reference (drop {args.ref_drop}, 1.0x), mean over "
             f"seeds {args.seeds}; no recipes, no polishing.", "",
             f"| sampler | after {args.short} trials | after {args.long} trials |", "|---|---|---|"]
    for s, r in rows.items():
        lines.append(f"| {s} | {statistics.mean(r['short']):.4f} | {statistics.mean(r['long']):.4f} |")
    (Path(args.out) / f"compare_samplers-{args.workload}.md").write_text("\n".join(lines) + "\n")
    (Path(args.out) / f"compare_samplers-{args.workload}.json").write_text(
        json.dumps({**h, "results": rows}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
