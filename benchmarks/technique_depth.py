"""Depth pruning on MiniLM: fp32, whole-model quantize_dynamic, the best member without depth
pruning, and students with 1 and 2 of the 6 transformer layers removed (measured importance),
distilled (cosine to the teacher plus each kept layer's hidden states against the teacher layer it
came from), then int8 dynamic: all measured in one interleaved run (see ``_technique.py``).

    nice -n 10 python benchmarks/technique_depth.py                 # minilm, cpu-local, 100 steps
    nice -n 10 python benchmarks/technique_depth.py --steps 300 --depths 1 2 3
"""

from __future__ import annotations

import argparse

from _record import add_run_args, out_dir, quick_defaults
from _technique import run

from autocl.config import CompressionConfig, DistillConfig, PruneConfig, QuantConfig

BEST_WITHOUT = ("autocl int8_dynamic, no depth pruning",
                "the fastest member within 0.01 of the 18-minute `minilm` search in "
                "`compare_baselines.md` (trial 42: unpruned, all 36 Linear layers int8 dynamic), rebuilt here.")


def distill_config(steps: int, lr: float, feature_weight: float) -> DistillConfig:
    # alpha 0: the loss is 1 - cosine to the teacher's embeddings, the metric itself
    return DistillConfig(temperature=0.05, alpha=0.0, steps=steps, lr=lr, batch_size=16,
                         warmup_steps=max(1, steps // 10), feature_weight=feature_weight)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", default="minilm")
    parser.add_argument("--profile", default="cpu-local")
    parser.add_argument("--depths", nargs="+", type=float, default=[1, 2], help="blocks removed (count) per row")
    parser.add_argument("--criterion", default="importance", choices=["importance", "uniform"])
    parser.add_argument("--steps", type=int, default=100, help="distillation steps of each student (batch 16)")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--feature-weight", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    add_run_args(parser, quick="one row (2 blocks removed), 16 distillation steps, 2 rounds")
    args = parser.parse_args()
    quick_defaults(args, parser, depths=[2], steps=16, rounds=2)
    quant = QuantConfig(default="int8_dynamic")
    d = distill_config(args.steps, args.lr, args.feature_weight)
    with_ = [(f"depth -{depth:g} ({args.criterion}) + distill + int8_dynamic",
              CompressionConfig(prune=PruneConfig(depth=depth, depth_criterion=args.criterion), distill=d, quant=quant))
             for depth in args.depths]
    notes = [f"Distillation: {args.steps} steps of 16 sentences from the workload's training snippets, lr {args.lr:g}, "
             f"cosine decay, loss 1 - cosine + {args.feature_weight:g} x hidden-state MSE of each kept layer against "
             "its teacher layer; `build s` is the whole build (depth choice, distillation, export, quantization), "
             "run nice'd on a machine shared with other jobs."]
    run("depth", args.workload, args.profile, (BEST_WITHOUT[0], CompressionConfig(quant=quant), BEST_WITHOUT[1]),
        with_, rounds=args.rounds, target=0.99, notes=notes, out_dir=out_dir(args), quick=args.quick)


if __name__ == "__main__":
    main()
