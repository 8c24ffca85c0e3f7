"""Quantization-aware training where it should win, measured in one interleaved run.

* ``minilm``: every Linear layer static int8 (QDQ U8S8), post-training (PTQ, min-max and percentile
  calibration) and quantization-aware (QAT: distilled with the layers fake-quantized, exported with
  the trained ranges), against whole-model dynamic int8 (the usual recipe for transformers) and fp32.
* ``mnist``: the residual CNN pruned 70% and distilled, then fp32, static int8 PTQ, or static int8
  QAT with the same distillation steps.

"Best without" is the fastest row without QAT within ``--max-drop``; "best with" the fastest QAT row
within it. Every row is built by autocl's Compressor and timed by autocl's measurement.

    python benchmarks/technique_qat.py --workload minilm --steps 240
    python benchmarks/technique_qat.py --workload mnist --steps 300
"""

from __future__ import annotations

import argparse

from _record import add_run_args, out_dir, quick_defaults
from _technique import best, build_rows, log, write

PROFILES = {"minilm": "cpu-local", "mnist": "cpu-edge-1t", "digits": "cpu-edge-1t"}


def configs(workload: str, steps: int, ratio: float) -> dict:
    from autocl.config import CompressionConfig, DistillConfig, PruneConfig, QuantConfig

    if workload == "minilm":  # the distillation of search_spaces/minilm.yaml
        d = DistillConfig(temperature=0.05, alpha=0.5, steps=steps, lr=1e-4, batch_size=16,
                          warmup_steps=max(1, steps // 10))
        return {
            "fp32": None,
            "int8 dynamic": CompressionConfig(quant=QuantConfig(default="int8_dynamic")),
            "int8 static PTQ, min-max": CompressionConfig(quant=QuantConfig(default="int8")),
            "int8 static PTQ, percentile": CompressionConfig(quant=QuantConfig(default="int8", calibration="percentile")),
            "int8 static QAT": CompressionConfig(distill=d, quant=QuantConfig(default="int8", qat=True)),
        }
    d = DistillConfig(steps=steps, batch_size=64, lr=2e-3, temperature=4.0, alpha=0.5, warmup_steps=steps // 20)
    p = PruneConfig(ratio=ratio)
    pct = f"{ratio:.0%}"
    return {
        "fp32": None,
        "int8 static PTQ": CompressionConfig(quant=QuantConfig(default="int8")),
        f"prune {pct} fp32": CompressionConfig(prune=p, distill=d),
        f"prune {pct} + int8 static PTQ": CompressionConfig(prune=p, distill=d, quant=QuantConfig(default="int8")),
        f"prune {pct} + int8 static QAT": CompressionConfig(prune=p, distill=d, quant=QuantConfig(default="int8", qat=True)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", default="minilm", choices=sorted(PROFILES))
    parser.add_argument("--steps", type=int, default=240, help="distillation steps of the QAT (and pruned) students")
    parser.add_argument("--ratio", type=float, default=0.7, help="pruning ratio of the CNN students")
    parser.add_argument("--profile", default=None, help="hardware profile [default: cpu-local for minilm, else cpu-edge-1t]")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved measurement rounds")
    parser.add_argument("--max-drop", type=float, default=0.01, help="allowed metric drop (0.01 = cosine 0.99 on minilm)")
    add_run_args(parser, quick="24 distillation steps, 2 rounds")
    args = parser.parse_args()
    quick_defaults(args, parser, steps=24, rounds=2)
    cfgs = configs(args.workload, args.steps, args.ratio)
    rows, facts = build_rows(args.workload, cfgs, args.profile or PROFILES[args.workload], args.rounds,
                             quick=args.quick)
    names = [n for n in rows if n != "fp32"]
    by_latency = lambda r: r["latency_ms"]  # noqa: E731
    without = best(rows, [n for n in names if "QAT" not in n], args.max_drop, by_latency)
    with_qat = best(rows, [n for n in names if "QAT" in n], args.max_drop, by_latency)
    marks = {k: v for k, v in ((without, "best without QAT"), (with_qat, "best with QAT")) if k}
    qat_row = next(n for n in names if "QAT" in n)
    ptq_row = qat_row.replace("QAT", "PTQ") if qat_row.replace("QAT", "PTQ") in rows else qat_row.replace("QAT", "PTQ, min-max")
    notes = [f"- Within a drop of {args.max_drop}: best without QAT: {without or 'none'}; best with QAT: {with_qat or 'none'}."]
    if without and with_qat:
        notes.append(f"- Best with / best without: {rows[with_qat]['speedup'] / rows[without]['speedup']:.2f}x speed "
                     f"({rows[with_qat]['metric']:.4f} vs {rows[without]['metric']:.4f} {facts['metric_name']}).")
    if "int8 dynamic" in rows:
        notes.append(f"- QAT static int8 / dynamic int8 latency ratio: "
                     f"{rows['int8 dynamic']['latency_ms'] / rows[qat_row]['latency_ms']:.2f}x "
                     "(> 1: static is faster).")
    notes.append(f"- QAT recovers {rows[qat_row]['metric'] - rows[ptq_row]['metric']:+.4f} {facts['metric_name']} over "
                 f"PTQ ({ptq_row}) with the same int8 kernels (same QDQ op types; only the activation ranges and "
                 "the weights differ).")
    notes.append(f"- QAT: {args.steps} distillation steps, {rows[qat_row]['seconds'] / 60:.1f} min to build on this "
                 "machine (shared, 2 cores, nice'd). The trained activation ranges are passed to onnxruntime's "
                 "`quantize_static` as `TensorQuantOverrides` (rmin/rmax); ORT computes the scales itself.")
    write("qat", f"Quantization-aware training on {args.workload}",
          ["fp32, the best configuration without QAT and the best with it, built by autocl's Compressor and "
           "measured in one interleaved run (`benchmarks/_technique.py`). Δ metric is `autocl.evaluate.metric_drop` "
           "(negative: worse). `compressed KB` is the study's size (`autocl.compress.size`)."],
          rows, facts, marks, notes, out_dir(args))
    log("done")


if __name__ == "__main__":
    main()
