"""Which precisions an execution provider really runs, per op, found by running them.

A precision is offered to the search for a layer only when the profile's execution provider runs
that layer's op at that precision with a real kernel. The probe quantizes a one-op model with the
same passes a trial uses, opens it on the provider, runs it once with profiling on, and checks:

* the session opens and runs (a missing kernel fails here);
* onnxruntime did not insert Casts of its own (how the CPU provider runs a float16 MatMul or Conv:
  cast to float32, compute in float32, cast back; measured on onnxruntime 1.32);
* every node ran on the profile's provider, not a fallback to the CPU provider;
* a layer quantized to an integer precision runs an integer kernel after optimization
  (``INTEGER_KERNELS``), not DequantizeLinear -> float op -> QuantizeLinear, which is how a provider
  without QDQ fusion (CUDA without TensorRT) runs a QDQ model.

For OpenVINO's runtime (``execution_provider: OpenVINO``, see ``autocl.openvino_session``) the same
quantized one-op model is compiled by OpenVINO, run once, and its execution graph read: the op's
compute node (Convolution, FullyConnected, MatMul, Gather) must run at the precision asked for
(u8/i8 for int8, u4/i4 for int4, f16/bf16 for fp16), not in f32 with conversions around it.

Results are cached per (runtime version, provider, op, precision) for the process.
"""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path
from typing import cast

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from autocl.compress.quantize import OP_PRECISIONS, WHY_NOT, quantize_model
from autocl.config import Precision, QuantConfig
from autocl.errors import AutoclError
from autocl.openvino_session import OPENVINO, OpenVINOSession, openvino_missing, openvino_version

_NODE = {"Conv": "/probe/Conv", "Gemm": "/probe/Gemm", "MatMul": "/probe/MatMul", "Gather": "/probe/Gather"}


def _lookup_model(rng: np.random.Generator) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """A one-op embedding lookup: a constant table read by token ids."""
    table = rng.standard_normal((100, 64)).astype(np.float32)
    node = helper.make_node("Gather", ["w", "ids"], ["y"], name=_NODE["Gather"])
    graph = helper.make_graph(
        [node],
        "probe",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [2, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8, 64])],
        [numpy_helper.from_array(table, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model, {"ids": rng.integers(0, 100, (2, 8)).astype(np.int64)}


def _probe_model(op: str) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    if op == "Gather":
        return _lookup_model(rng)
    if op == "Conv":
        shape, w = [1, 16, 8, 8], rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
        node = helper.make_node("Conv", ["x", "w", "b"], ["y"], name=_NODE[op], pads=[1, 1, 1, 1])
    elif op == "Gemm":
        shape, w = [4, 64], rng.standard_normal((64, 64)).astype(np.float32)
        node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], name=_NODE[op], transB=1)
    else:
        shape, w = [2, 4, 64], rng.standard_normal((64, 64)).astype(np.float32)
        node = helper.make_node("MatMul", ["x", "w"], ["y"], name=_NODE[op])
    inits = [numpy_helper.from_array(w, "w")]
    if op != "MatMul":
        inits.append(numpy_helper.from_array(np.zeros(w.shape[0], np.float32), "b"))
    out_shape = [*shape[:-1], w.shape[0]] if op == "Gemm" else (shape if op == "Conv" else [*shape[:-1], w.shape[1]])
    graph = helper.make_graph(
        [node],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model, {"x": rng.standard_normal(shape).astype(np.float32)}


@functools.cache
def _probe(op: str, precision: str, provider: str, version: str) -> str | None:
    if precision == "fp32":
        return None
    if precision not in OP_PRECISIONS.get(op, ()):
        return WHY_NOT.get((op, precision), f"autocl cannot quantize {op} to {precision}")
    model, feed = _probe_model(op)
    with tempfile.TemporaryDirectory(prefix="autocl-probe-") as tmp:
        src, dst, opt = Path(tmp) / "fp32.onnx", Path(tmp) / "q.onnx", Path(tmp) / "optimized.onnx"
        onnx.save(model, str(src))
        try:
            quantize_model(
                src,
                dst,
                QuantConfig(default=cast("Precision", precision), calibration_samples=1),
                {"probe": [_NODE[op]]},
                [feed],
            )
        except AutoclError as exc:  # autocl's own refusal (check_precisions, the graph check): that is the reason
            return f"onnxruntime's quantizer cannot make {op} {precision}: {exc}"
        except Exception as exc:  # anything else is a bug (autocl's or the quantizer's), not a refusal: say so
            raise RuntimeError(
                f"quantizing a one-op {op} model to {precision} crashed ({type(exc).__name__}: {exc}); "
                "this is a bug, not a precision the runtime refuses"
            ) from exc
        if provider == OPENVINO:
            return _openvino_refusal(op, precision, dst, feed, version)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.intra_op_num_threads = 1
        opts.optimized_model_filepath = str(opt)
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "profile")
        try:
            sess = ort.InferenceSession(str(dst), opts, providers=[provider])
            sess.run(None, feed)
            trace = json.loads(Path(sess.end_profiling()).read_text())
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return f"{provider} cannot run {op} at {precision} (onnxruntime {version}): {first}"
        if precision == "fp16" and opt.is_file() and not _computes_in_float16(onnx.load(str(opt))):
            return (
                f"{provider} has no float16 kernel for {op} in onnxruntime {version}: it inserts Casts and "
                "computes in float32, so the layer would be fp32 with extra casts"
            )
        if opt.is_file() and (why := float_between_conversions(op, precision, provider, onnx.load(str(opt)))):
            return f"{why} (onnxruntime {version})"
        elsewhere = sorted(
            {
                e["args"].get("op_name", "?")
                for e in trace
                if e.get("cat") == "Node" and e.get("args", {}).get("provider") not in (None, provider)
            }
        )
        if elsewhere:
            return (
                f"{provider} does not run {', '.join(elsewhere)} for {op} at {precision} in onnxruntime "
                f"{version}: they fall back to another provider"
            )
    return None


_OV_COMPUTE = {"Convolution", "FullyConnected", "MatMul", "Gather", "Deconvolution"}
_OV_RUNS = {"int8": ("u8", "i8"), "int8_dynamic": ("u8", "i8"), "int4": ("u4", "i4"), "fp16": ("f16", "bf16")}


def _openvino_refusal(op: str, precision: str, path: Path, feed: dict[str, np.ndarray], version: str) -> str | None:
    """Why OpenVINO does not run the quantized one-op model at ``precision``: it fails to compile or
    run it, or its compute node runs in another precision (f32 between conversions)."""
    try:
        sess = OpenVINOSession(path, {}, 1)
        sess.run(None, feed)
        nodes = [(kind, prec) for kind, prec in sess.runtime_precisions() if kind in _OV_COMPUTE]
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"OpenVINO {version} cannot run {op} at {precision}: {first}"
    wanted = _OV_RUNS.get(precision, ())
    if not nodes or any(prec not in wanted for _, prec in nodes):
        ran = ", ".join(f"{kind} in {prec}" for kind, prec in nodes) or "no compute node"
        return f"OpenVINO {version} runs {op} at {precision} as {ran}: no {precision} kernel, only conversions"
    return None


INTEGER_PRECISIONS = ("int8", "int8_dynamic", "int4")
INTEGER_KERNELS = {
    "QLinearConv",
    "ConvInteger",
    "QGemm",
    "QLinearMatMul",
    "MatMulInteger",
    "MatMulIntegerToFloat",
    "DynamicQuantizeMatMul",
    "MatMulNBits",
    "QAttention",
}
"""Ops whose kernels compute on integers: after onnxruntime's optimizations, a layer quantized to an
integer precision must run one of them (on the CPU provider QDQ pairs fuse into QLinearConv, QGemm,
QLinearMatMul; a provider without the fusion keeps DequantizeLinear -> float Conv -> QuantizeLinear,
which is float32 with conversions). An embedding table (``Gather``) is weight-only: its gain is size."""


def float_between_conversions(op: str, precision: str, provider: str, optimized: onnx.ModelProto) -> str | None:
    """Why a layer quantized to an integer ``precision`` still computes in float32, read from the
    graph onnxruntime optimized for ``provider``: no op of ``INTEGER_KERNELS`` is left in it.

    Args:
        op: The layer's op type; ``Gather`` (a weight-only table) is never refused here.
        precision: The precision asked for; only integer ones are checked.
        provider: The execution provider, for the reason.
        optimized: The optimized graph (``SessionOptions.optimized_model_filepath``).

    Returns:
        The reason, or None when an integer kernel runs (or the check does not apply).
    """
    if precision not in INTEGER_PRECISIONS or op == "Gather":
        return None
    ran = {n.op_type for n in optimized.graph.node}
    if ran & INTEGER_KERNELS:
        return None
    return (
        f"{provider} runs {op} at {precision} as {', '.join(sorted(ran))}: no integer kernel, "
        "the layer computes in float32 between conversions"
    )


def _computes_in_float16(optimized: onnx.ModelProto) -> bool:
    """After onnxruntime's optimizations, does a compute node still read a float16 weight? The CPU
    provider's InsertCastTransformer instead casts the weight to float32 and wraps the node in
    ``InsertedPrecisionFreeCast`` Casts."""
    half = {t.name for t in optimized.graph.initializer if t.data_type == TensorProto.FLOAT16}
    inserted = any("InsertedPrecisionFreeCast" in name for n in optimized.graph.node for name in (*n.input, *n.output))
    return not inserted and any(n.op_type != "Cast" and set(n.input) & half for n in optimized.graph.node)


def unsupported_reason(op: str, precision: str, provider: str) -> str | None:
    """Why ``provider`` cannot run ``op`` at ``precision`` with a real kernel.

    Args:
        op: An ONNX op type (e.g. ``Conv``, ``MatMul``).
        precision: A precision name (e.g. ``int8``).
        provider: The onnxruntime execution provider, or ``OpenVINO`` (OpenVINO's own runtime).

    Returns:
        The reason, or None when it can.
    """
    if provider == OPENVINO:
        missing = openvino_missing()
        if missing and precision != "fp32":
            return missing
        return _probe(op, precision, provider, (openvino_version() or "").split("-")[0])  # 2026.4.1, not the build
    return _probe(op, precision, provider, ort.__version__)


def refusals(
    op_types: dict[str, set[str]], precisions: list[str] | tuple[str, ...], provider: str
) -> dict[str, dict[str, str]]:
    """For each layer, the precisions ``provider`` cannot run, each with its reason.

    Args:
        op_types: ``{layer: op types of its nodes}`` (see :func:`layer_op_types`).
        precisions: The precisions to check.
        provider: The onnxruntime execution provider.

    Returns:
        ``{layer: {precision: reason}}``; layers with nothing refused are left out.
    """
    out: dict[str, dict[str, str]] = {}
    for layer, ops in op_types.items():
        for p in precisions:
            for op in sorted(ops):
                why = unsupported_reason(op, p, provider)
                if why:
                    out.setdefault(layer, {})[p] = why
                    break
    return out


def refused_by_all(
    op_types: dict[str, set[str]], precisions: list[str] | tuple[str, ...], providers: list[str]
) -> dict[str, dict[str, str]]:
    """:func:`refusals` for a study on several targets: a precision is refused on a layer only when
    every provider refuses it (a target's front needs what its own provider runs).

    Args:
        op_types: ``{layer: op types of its nodes}``.
        precisions: The precisions to check.
        providers: The targets' execution providers (each distinct one is probed once).

    Returns:
        ``{layer: {precision: reason}}``; with several providers the reason names each.
    """
    distinct = list(dict.fromkeys(providers))
    each = {prov: refusals(op_types, precisions, prov) for prov in distinct}
    out: dict[str, dict[str, str]] = {}
    for layer, refused in each[distinct[0]].items():
        for precision, why in refused.items():
            if all(precision in each[prov].get(layer, {}) for prov in distinct[1:]):
                out.setdefault(layer, {})[precision] = (
                    why
                    if len(distinct) == 1
                    else "; ".join(f"{prov}: {each[prov][layer][precision]}" for prov in distinct)
                )
    return out


def layer_op_types(model_path: str | Path, layer_names: list[str]) -> dict[str, set[str]]:
    """The op types of each layer's compute nodes in an exported (fp32) graph.

    Args:
        model_path: The fp32 ONNX file.
        layer_names: The layers' names.

    Returns:
        ``{layer: {op type, ...}}``.
    """
    from autocl.compress.onnx_export import layer_nodes

    model = onnx.load(str(model_path), load_external_data=False)
    ops = {n.name: n.op_type for n in model.graph.node}
    return {layer: {ops[n] for n in names} for layer, names in layer_nodes(model, layer_names).items()}
