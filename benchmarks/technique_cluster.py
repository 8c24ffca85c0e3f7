"""Weight clustering where it should win (a size-bound target), measured in one interleaved run.

On the CNN: fp32, static int8, pruning + static int8 (the size reducers without clustering), and
k-means weight clustering (``k`` shared values per layer, fine-tuned with the centroids held) alone
and with static int8. The size is the study's (``autocl.compress.size``: palettes of <= 256 values,
then deflate level 1). "Best without" / "best with" are the smallest rows within ``--max-drop``.
Clustering does not change onnxruntime's CPU kernels: the latency column shows it.

    python benchmarks/technique_cluster.py --workload mnist --steps 300
"""

from __future__ import annotations

import argparse

from _record import add_run_args, out_dir, quick_defaults
from _technique import best, build_rows, log, write


def configs(steps: int, ks: list[int]) -> dict:
    from autocl.config import ClusterConfig, CompressionConfig, DistillConfig, PruneConfig, QuantConfig

    d = DistillConfig(steps=steps, batch_size=64, lr=1e-3, temperature=4.0, alpha=0.5, warmup_steps=steps // 20)
    int8 = QuantConfig(default="int8")
    rows = {
        "fp32": None,
        "int8 static": CompressionConfig(quant=int8),
        "prune 50% + int8 static": CompressionConfig(prune=PruneConfig(ratio=0.5), distill=d, quant=int8),
    }
    for k in ks:
        rows[f"cluster {k}"] = CompressionConfig(distill=d, cluster=ClusterConfig(clusters=k))
        rows[f"cluster {k} + int8 static"] = CompressionConfig(distill=d, cluster=ClusterConfig(clusters=k), quant=int8)
    k = ks[-1]  # the techniques compose: pruning removes weights, clustering shares the rest
    rows[f"prune 50% + cluster {k} + int8 static"] = CompressionConfig(
        prune=PruneConfig(ratio=0.5), distill=d, cluster=ClusterConfig(clusters=k), quant=int8)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", default="mnist", choices=["mnist", "digits"])
    parser.add_argument("--steps", type=int, default=300, help="distillation steps of every fine-tuned student")
    parser.add_argument("--clusters", type=int, nargs="+", default=[16, 4], help="cluster counts to show")
    parser.add_argument("--profile", default="cpu-edge-1t")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved measurement rounds")
    parser.add_argument("--max-drop", type=float, default=0.01, help="allowed metric drop (0.01 = one accuracy point)")
    add_run_args(parser, quick="40 distillation steps, 4 clusters only, 2 rounds")
    args = parser.parse_args()
    quick_defaults(args, parser, steps=40, clusters=[4], rounds=2)
    rows, facts = build_rows(args.workload, configs(args.steps, args.clusters), args.profile, args.rounds,
                             quick=args.quick)
    names = [n for n in rows if n != "fp32"]
    size = lambda r: r["compressed_kb"]  # noqa: E731
    without = best(rows, [n for n in names if "cluster" not in n], args.max_drop, size)
    with_c = best(rows, [n for n in names if "cluster" in n], args.max_drop, size)
    marks = {k: v for k, v in ((without, "best without clustering"), (with_c, "best with clustering")) if k}
    notes = [f"- Within a drop of {args.max_drop}, by compressed size: best without clustering: {without or 'none'}; "
             f"best with: {with_c or 'none'}."]
    if without and with_c:
        notes.append(f"- Best with / best without: {rows[without]['compressed_kb'] / rows[with_c]['compressed_kb']:.2f}x "
                     f"smaller ({rows[with_c]['compressed_kb']:.0f} KB vs {rows[without]['compressed_kb']:.0f} KB).")
    k = args.clusters[0]
    notes.append(f"- Latency is not what clustering buys: cluster {k} runs at {rows[f'cluster {k}']['speedup']:.2f}x of "
                 f"fp32 and cluster {k} + int8 at {rows[f'cluster {k} + int8 static']['speedup']:.2f}x vs "
                 f"{rows['int8 static']['speedup']:.2f}x for int8 alone: onnxruntime's CPU kernels read dense weights, "
                 "the file on disk is as large (`file KB`); only the shipped, palettized size falls.")
    notes.append(f"- Fine-tuning: {args.steps} distillation steps per student, centroids re-computed and weights "
                 "snapped after every optimizer step.")
    write("cluster", f"Weight clustering on {args.workload}",
          ["fp32, the smallest configuration without clustering and the smallest with it, built by autocl's "
           "Compressor and measured in one interleaved run (`benchmarks/_technique.py`). `compressed KB` is the "
           "study's size objective (`autocl.compress.size`)."],
          rows, facts, marks, notes, out_dir(args))
    log("done")


if __name__ == "__main__":
    main()
