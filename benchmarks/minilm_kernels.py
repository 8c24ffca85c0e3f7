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
``quant.fuse_first``; and two ideas that did not pay here, kept so that they can be re-measured on
another CPU: the fused graph with Q, K and V packed into one MatMul (their input is quantized once,
one GEMM three times as wide) before ``quantize_dynamic``, and the fused graph with every MatMul as
8-bit ``MatMulNBits`` (blockwise weights, activations quantized per block, int8 compute:
``accuracy_level`` 4).

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
         "DynamicQuantizeLinear", "MatMul", "FusedMatMul", "Gelu", "BiasGelu", "MatMulNBits", "Split")


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


def pack_qkv(model):
    """The graph with each set of MatMul + bias Add that read one tensor (an attention's Q, K and V)
    merged into one MatMul + Add over concatenated weights, then Split back into their outputs."""
    import numpy as np
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    readers = collections.defaultdict(list)
    for n in g.node:
        for i in n.input:
            readers[i].append(n)
    def bias(matmul, add) -> str | None:
        """The constant of ``add`` shaped like ``matmul``'s output columns (its bias), if any."""
        cols = [inits[matmul.input[1]].dims[1]]
        return next((i for i in add.input if i in inits and list(inits[i].dims) == cols), None)

    groups = collections.defaultdict(list)
    for n in g.node:
        after = readers.get(n.output[0], [])
        if (n.op_type == "MatMul" and n.input[1] in inits and len(inits[n.input[1]].dims) == 2 and len(after) == 1
                and after[0].op_type == "Add" and bias(n, after[0]) is not None):
            groups[n.input[0]].append((n, after[0], bias(n, after[0])))
    packed = [(x, m) for x, m in groups.items() if len(m) > 1]
    if not packed:
        raise RuntimeError("pack_qkv: no MatMul + bias Add shares its input with another; nothing packed")
    for k, (x, members) in enumerate(packed):
        ws = [numpy_helper.to_array(inits[mm.input[1]]) for mm, _, _ in members]
        bs = [numpy_helper.to_array(inits[b]) for _, _, b in members]
        name = f"packed_{k}"
        g.initializer.extend([numpy_helper.from_array(np.concatenate(ws, 1), f"{name}_W"),
                              numpy_helper.from_array(np.concatenate(bs, 0), f"{name}_B"),
                              numpy_helper.from_array(np.array([w.shape[1] for w in ws], np.int64), f"{name}_split")])
        at = min(list(g.node).index(mm) for mm, _, _ in members)
        for mm, add, b in members:
            g.node.remove(mm)
            g.node.remove(add)
            for weight in (mm.input[1], b):
                g.initializer.remove(inits.pop(weight))
        new = [helper.make_node("MatMul", [x, f"{name}_W"], [f"{name}_mm"], name=f"{name}/MatMul"),
               helper.make_node("Add", [f"{name}_mm", f"{name}_B"], [f"{name}_add"], name=f"{name}/Add"),
               helper.make_node("Split", [f"{name}_add", f"{name}_split"], [a.output[0] for _, a, _ in members],
                                name=f"{name}/Split", axis=-1)]
        for j, node in enumerate(new):
            g.node.insert(at + j, node)
    return model


def tried_rows(fp32: Path, tmp: Path) -> dict[str, Path]:
    """The two ideas that did not pay on the CPU measured (see the module docstring)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from autocl.compress.quantize import _nbits_quantizer, fuse

    fused = tmp / "fused.onnx"
    fuse(fp32, fused, [])
    packed = tmp / "fused-packed.onnx"
    onnx.save(pack_qkv(onnx.load(str(fused))), str(packed))
    out = {"fused + packed Q/K/V + quantize_dynamic": tmp / "packed-qdyn.onnx"}
    quantize_dynamic(str(packed), str(out["fused + packed Q/K/V + quantize_dynamic"]), weight_type=QuantType.QInt8,
                     per_channel=True, op_types_to_quantize=["MatMul", "Gather"],
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    q = _nbits_quantizer()(onnx.load(str(fused)), bits=8, block_size=128, is_symmetric=True, accuracy_level=4,
                           op_types_to_quantize=("MatMul",))
    q.process()
    name = "fused + 8-bit MatMulNBits (block 128, int8 compute)"
    out[name] = tmp / "nbits8.onnx"
    onnx.save(q.model.model, str(out[name]))
    return out


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
    log("building the ideas that did not pay (packed Q/K/V, 8-bit MatMulNBits)")
    paths.update(tried_rows(paths["fp32"], tmp))
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
