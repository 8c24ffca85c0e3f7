"""What a transformer's int8 artifacts execute: the kernels after onnxruntime's load-time fusions, the time
each op type takes, and the latency of every artifact in one interleaved run.

Issue 18 asks autocl to beat Intel Neural Compressor's MiniLM configuration by 1.2x `quantize_dynamic`
at cosine >= 0.99. This benchmark shows what separates the graphs: the op types a session runs (after
its own fusions, counted in the optimized graph onnxruntime writes), the share of one thread's time
each takes (onnxruntime's profiler over ``--profile-runs`` runs), and a microbenchmark of the one
fusion that differs, ``SkipLayerNormalization`` against ``Add`` + ``LayerNormalization`` on the
same tensors.

Rows: the fp32 model; ``quantize_dynamic`` as the README's by-hand row makes it (per-channel MatMul);
the same plus the embedding tables (INC's op list); INC's tuned artifact when a
``compare_baselines`` run left it (``--inc``); autocl's all-layers ``int8_dynamic`` without and with
``quant.fuse_first``.

    python benchmarks/minilm_kernels.py
    python benchmarks/minilm_kernels.py --quick          # 2 rounds, 3 profiled runs

Results: ``benchmarks/results/minilm_kernels.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
import time
from pathlib import Path

from _record import ROOT, add_run_args, header, header_line, log, measure_all, out_dir, quick_defaults

FUSED = ("SkipLayerNormalization", "LayerNormalization", "Add", "DynamicQuantizeMatMul", "MatMulIntegerToFloat",
         "DynamicQuantizeLinear", "MatMul", "FusedMatMul", "Gelu", "BiasGelu")


def _options():
    """One thread, no spinning, quiet: the options every session here uses."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return so


def executed_ops(path: Path, tmp: Path) -> dict[str, int]:
    """The op types of ``path`` after the session's load-time fusions (its written optimized graph)."""
    import onnx
    import onnxruntime as ort

    out = tmp / f"{path.stem}-optimized.onnx"
    so = _options()
    so.optimized_model_filepath = str(out)
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    graph = onnx.load(str(out), load_external_data=False).graph
    counts = collections.Counter(n.op_type for n in graph.node)
    return {k: counts[k] for k in FUSED if counts[k]}


def op_time_shares(path: Path, feed: dict, runs: int, tmp: Path) -> dict[str, float]:
    """Each op type's share of the kernel time over ``runs`` runs (onnxruntime's profiler), largest first."""
    import onnxruntime as ort

    so = _options()
    so.enable_profiling = True
    so.profile_file_prefix = str(tmp / path.stem)
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    for _ in range(runs + 1):
        sess.run(None, feed)
    events = json.loads(Path(sess.end_profiling()).read_text())
    time_by_op: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            time_by_op[e["args"]["op_name"]] += e["dur"]
    total = sum(time_by_op.values()) or 1
    return {k: round(100 * v / total, 1) for k, v in time_by_op.most_common() if 100 * v / total >= 0.5}


def skip_layernorm_micro(rounds: int) -> dict[str, float]:
    """12 residual blocks on MiniLM's shape (8 x 64 x 384): fused into SkipLayerNormalization by the
    session, and with that fusion disabled (Add + Add + LayerNormalization); median ms of each."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    h = 384
    inits = [numpy_helper.from_array(np.ones(h, np.float32), "g"), numpy_helper.from_array(np.zeros(h, np.float32), "b"),
             numpy_helper.from_array(np.full(h, 0.1, np.float32), "bias")]
    nodes, cur = [], "x"
    for i in range(12):
        nodes += [helper.make_node("Add", [cur, "bias"], [f"a{i}"]), helper.make_node("Add", [f"a{i}", "y"], [f"s{i}"]),
                  helper.make_node("LayerNormalization", [f"s{i}", "g", "b"], [f"l{i}"], axis=-1, epsilon=1e-12)]
        cur = f"l{i}"
    nodes.append(helper.make_node("Identity", [cur], ["o"]))
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [8, 64, h]) for n in ("x", "y", "o")]
    model = helper.make_model(helper.make_graph(nodes, "residual", io[:2], io[2:], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    data = model.SerializeToString()
    so = _options()
    sessions = {
        "SkipLayerNormalization": ort.InferenceSession(data, so, providers=["CPUExecutionProvider"]),
        "Add + LayerNormalization": ort.InferenceSession(data, so, providers=["CPUExecutionProvider"],
                                                         disabled_optimizers=["SkipLayerNormFusion"]),
    }
    rng = np.random.default_rng(0)
    feed = {"x": rng.standard_normal((8, 64, h), dtype=np.float32), "y": rng.standard_normal((8, 64, h), dtype=np.float32)}
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(rounds):
        for k, s in sessions.items():
            t0 = time.perf_counter()
            s.run(None, feed)
            times[k].append(time.perf_counter() - t0)
    return {k: round(float(np.median(v)) * 1000, 3) for k, v in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", default="minilm")
    parser.add_argument("--profile", default="cpu-local")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved measurement rounds")
    parser.add_argument("--profile-runs", type=int, default=10, help="runs under onnxruntime's profiler")
    parser.add_argument("--inc", default=str(ROOT / "benchmarks" / "results" / "work" / "minilm-inc.onnx"),
                        help="INC's tuned artifact (written by compare_baselines.py); skipped when absent")
    add_run_args(parser, quick="2 rounds, 3 profiled runs")
    args = parser.parse_args()
    quick_defaults(args, parser, rounds=2, profile_runs=3)

    from onnxruntime.quantization import QuantType, quantize_dynamic

    from autocl.compress import Compressor
    from autocl.config import CompressionConfig, QuantConfig
    from autocl.evaluate import evaluate_artifact
    from autocl.hardware import load_profile
    from autocl.runtime import cache_dir
    from autocl.workloads import load_workload

    profile = load_profile(args.profile)
    w = load_workload(args.workload)
    comp = Compressor(w, cache_dir())
    tmp = Path(tempfile.mkdtemp(prefix="autocl-kernels-"))
    paths: dict[str, Path] = {"fp32": comp.baseline()}
    log("quantize_dynamic by hand")
    paths["quantize_dynamic (per-channel MatMul)"] = tmp / "qdyn.onnx"
    quantize_dynamic(str(paths["fp32"]), str(tmp / "qdyn.onnx"), weight_type=QuantType.QInt8, per_channel=True)
    paths["quantize_dynamic + embeddings (INC's op list)"] = tmp / "qdyn-gather.onnx"
    quantize_dynamic(str(paths["fp32"]), str(tmp / "qdyn-gather.onnx"), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul", "Gather"])
    if Path(args.inc).is_file():
        paths["INC tuned artifact"] = Path(args.inc)
    for fuse in (False, True):
        name = "autocl int8_dynamic" + (" + fuse_first" if fuse else "")
        log(f"building {name}")
        paths[name] = comp.artifact(CompressionConfig(quant=QuantConfig(default="int8_dynamic", fuse_first=fuse))).path
    feed = w.sample_feed(profile.batch_size)
    log(f"measuring {len(paths)} artifacts in {args.rounds} interleaved rounds on {profile.name}")
    lat = measure_all(paths, w, profile, args.rounds)
    base = lat["fp32"]["latency_ms"]
    rows = {}
    for name, path in paths.items():
        log(f"profiling {name}")
        rows[name] = {
            "metric": evaluate_artifact(path, w, profile),
            "latency_ms": lat[name]["latency_ms"],
            "speedup": base / lat[name]["latency_ms"],
            "executed": executed_ops(path, tmp),
            "time_share": op_time_shares(path, feed, args.profile_runs, tmp),
        }
    micro = skip_layernorm_micro(20 if args.quick else 200)
    facts = {"workload": args.workload, "profile": profile.name, **header(profile, quick=args.quick)}
    ref = rows["quantize_dynamic (per-channel MatMul)"]["latency_ms"]
    lines = ["# What MiniLM's int8 artifacts execute", "", header_line(facts) + f" Profile `{profile.name}`, batch "
             f"{profile.batch_size}, one interleaved run of {args.rounds} rounds.", "",
             f"| artifact | {w.metric_name} | latency ms | speed-up | vs quantize_dynamic | ops run after load-time fusions |",
             "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        ops = ", ".join(f"{k} {v}" for k, v in r["executed"].items())
        lines.append(f"| {name} | {r['metric']:.4f} | {r['latency_ms']:.2f} | {r['speedup']:.2f}x | "
                     f"{ref / r['latency_ms']:.2f}x | {ops} |")
    lines += ["", "Share of one thread's kernel time by op type (onnxruntime profiler, "
              f"{args.profile_runs} runs; ops under 0.5% left out):", ""]
    for name, r in rows.items():
        lines.append(f"- **{name}:** " + ", ".join(f"{k} {v}%" for k, v in r["time_share"].items()))
    fused, unfused = micro["SkipLayerNormalization"], micro["Add + LayerNormalization"]
    lines += ["", f"Microbenchmark, 12 residual blocks on 8 x 64 x 384: SkipLayerNormalization {fused} ms, "
              f"Add + LayerNormalization (fusion disabled) {unfused} ms: the fused kernel takes {fused / unfused:.2f}x "
              "as long on this CPU.", ""]
    text = "\n".join(lines)
    out = out_dir(args) / "minilm_kernels"
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps({"facts": facts, "rows": rows, "skip_layernorm_ms": micro}, indent=1,
                                                   default=str))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
