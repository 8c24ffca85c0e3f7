"""Low-rank factorization on MiniLM: fp32, whole-model quantize_dynamic, the best member without
it, and students whose Linear layers are replaced by truncated-SVD pairs at the rank ratios given
(a layer whose pair would cost more multiply-accumulates stays whole: at 0.5 only the FFN layers
are factorized), distilled (cosine to the teacher plus each layer's hidden states), then int8
dynamic, and the same students in fp32: all measured in one interleaved run (see ``_technique.py``).

    nice -n 10 python benchmarks/technique_lowrank.py               # minilm, cpu-local, rank 0.5, 100 steps
    nice -n 10 python benchmarks/technique_lowrank.py --ranks 0.5 0.25 --steps 300
"""

from __future__ import annotations

import argparse

from _record import add_run_args, out_dir, quick_defaults
from _technique import run
from technique_depth import BEST_WITHOUT, distill_config

from autocl.config import CompressionConfig, PruneConfig, QuantConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", default="minilm")
    parser.add_argument("--profile", default="cpu-local")
    parser.add_argument("--ranks", nargs="+", type=float, default=[0.5], help="rank ratios, one row each")
    parser.add_argument("--steps", type=int, default=100, help="distillation steps of each student (batch 16)")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--feature-weight", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    add_run_args(parser, quick="16 distillation steps, 2 rounds")
    args = parser.parse_args()
    quick_defaults(args, parser, steps=16, rounds=2)
    quant = QuantConfig(default="int8_dynamic")
    d = distill_config(args.steps, args.lr, args.feature_weight)
    with_ = []
    for r in args.ranks:  # the same student (cached) twice: int8 dynamic, and fp32 where no run-time quantization adds up
        prune = PruneConfig(rank_ratio=r)
        with_ += [(f"rank {r:g} + distill + int8_dynamic", CompressionConfig(prune=prune, distill=d, quant=quant)),
                  (f"rank {r:g} + distill, fp32", CompressionConfig(prune=prune, distill=d))]
    notes = [f"Distillation: {args.steps} steps of 16 sentences from the workload's training snippets, lr {args.lr:g}, "
             f"cosine decay, loss 1 - cosine + {args.feature_weight:g} x hidden-state MSE of each layer; `build s` is "
             "the whole build (SVD, distillation, export, quantization), run nice'd on a machine shared with other jobs."]
    run("lowrank", args.workload, args.profile, (BEST_WITHOUT[0].replace("depth pruning", "low rank"),
                                                 CompressionConfig(quant=quant), BEST_WITHOUT[1]),
        with_, rounds=args.rounds, target=0.99, notes=notes, out_dir=out_dir(args), quick=args.quick)


if __name__ == "__main__":
    main()
