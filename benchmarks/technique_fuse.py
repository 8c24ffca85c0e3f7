"""onnxruntime's graph fusions before quantizing (``quant.fuse_first``), measured in one interleaved run.

A session fuses a transformer's bias + GELU and scaled Q.K^T at load time; quantizing first splits
those patterns (the bias ``Add`` follows a ``MatMulInteger`` + scale ``Mul``), so the quantized model
loses them. ``fuse_first`` applies onnxruntime's extended optimizations to the exported graph, then
quantizes. Rows: fp32, every Linear int8 dynamic and static, each without and with ``fuse_first``.

    python benchmarks/technique_fuse.py --workload minilm
"""

from __future__ import annotations

import argparse

from _record import add_run_args, out_dir, quick_defaults
from _technique import best, build_rows, log, write


def configs(layers: list[str]) -> dict:
    from autocl.config import CompressionConfig, QuantConfig

    rows: dict = {"fp32": None}
    for precision in ("int8_dynamic", "int8"):
        for fuse in (False, True):
            # every layer that can take the precision (embedding tables: int8_dynamic only, else fp32)
            quant = QuantConfig(default=precision, fuse_first=fuse)
            rows[f"{precision}{' + fuse_first' if fuse else ''}"] = CompressionConfig(quant=quant)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", default="minilm")
    parser.add_argument("--profile", default="cpu-local")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved measurement rounds")
    parser.add_argument("--max-drop", type=float, default=0.01, help="allowed metric drop")
    add_run_args(parser, quick="2 rounds")
    args = parser.parse_args()
    quick_defaults(args, parser, rounds=2)
    from autocl.workloads import load_workload

    rows, facts = build_rows(args.workload, configs(load_workload(args.workload).layer_names()), args.profile,
                             args.rounds, quick=args.quick)
    names = [n for n in rows if n != "fp32"]
    fastest = lambda r: r["latency_ms"]  # noqa: E731
    without = best(rows, [n for n in names if "fuse" not in n], args.max_drop, fastest)
    with_f = best(rows, [n for n in names if "fuse" in n], args.max_drop, fastest)
    marks = {k: v for k, v in ((without, "best without fuse_first"), (with_f, "best with fuse_first")) if k}
    notes = [f"- Within a drop of {args.max_drop}: best without: {without or 'none'}; best with: {with_f or 'none'}."]
    if without and with_f:
        notes.append(f"- Best with / best without: {rows[without]['latency_ms'] / rows[with_f]['latency_ms']:.2f}x "
                     "faster.")
    for p in ("int8_dynamic", "int8"):
        a, b = rows[p], rows[f"{p} + fuse_first"]
        notes.append(f"- {p}: {a['latency_ms'] / b['latency_ms']:.2f}x faster with fuse_first, metric "
                     f"{a['metric']:.4f} -> {b['metric']:.4f}.")
    write("fuse", f"Graph fusions before quantizing on {args.workload}",
          ["fp32 and every Linear at one precision, without and with `quant.fuse_first`, built by autocl's "
           "Compressor and measured in one interleaved run (`benchmarks/_technique.py`)."],
          rows, facts, marks, notes, out_dir(args))
    log("done")


if __name__ == "__main__":
    main()
