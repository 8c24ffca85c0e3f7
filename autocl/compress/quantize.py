"""Per-layer mixed precision of an fp32 ONNX graph with onnxruntime's own quantizers.

Each precision is a real kernel in the written graph (see ``autocl.config.Precision``):

1. ``int8`` layers: static QDQ (U8S8), per-channel symmetric int8 weights and uint8 activations
   calibrated on training data (min-max, entropy or percentile), with ``reduce_range`` (7-bit
   weights) only on CPUs without int8 dot products, where 8-bit products saturate; the ops between
   int8 layers (residual adds, activations, pooling) are quantized with them (:data:`GLUE_OPS`).
   After quantization-aware training (``QuantConfig.qat``), the trained activation ranges replace the
   calibrated ones of the tensors they cover (``TensorQuantOverrides``): the same graph, other scales.
2. ``int8_dynamic`` layers: per-channel int8 weights, activations quantized at run time
   (MatMulInteger / ConvInteger); per-channel weights kept MiniLM's embeddings at cosine 0.99 where
   per-tensor ones gave 0.96. On an embedding table (Gather) it is weight-only: the table is stored
   in 8 bits, the looked-up rows are dequantized (onnxruntime's Gather quantization; MiniLM's word
   embeddings go from 47 to 12 MB). It runs after the static pass: the other way round, the static QDQ
   quantizer broke graphs where a static and a dynamic layer read the same tensor.
3. ``int4`` layers: 4-bit symmetric weight-only blocks of ``int4_block_size`` (MatMulNBits).
4. ``fp16`` layers: float16 weights and compute, with casts around the layer.

The passes run in that order over one graph; each touches only its own layers' nodes, so ``fp32``
layers are left untouched. A precision the op cannot take (int4 on a Conv) is an error here, never
a silent fp32.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)

from autocl.compress._graph import gemm_to_matmul, graph_precisions, to_float16
from autocl.compress.onnx_export import EMBEDDING_OPS
from autocl.config import QuantConfig
from autocl.errors import ConfigError

_CALIBRATION = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}
OP_PRECISIONS: dict[str, tuple[str, ...]] = {
    "Conv": ("fp32", "fp16", "int8", "int8_dynamic"),
    "Gemm": ("fp32", "fp16", "int8", "int8_dynamic", "int4"),
    "MatMul": ("fp32", "fp16", "int8", "int8_dynamic", "int4"),
    "Gather": ("fp32", "int8_dynamic"),
}
"""What each op can be quantized to by onnxruntime's quantizers; whether the profile's execution
provider really runs it is probed by ``autocl.compress.support``."""
QUANTIZER_VERSION = 3
"""Bumped when the int8 pass writes different graphs for the same configuration (2: glue ops;
3: no bias Adds among them."""
GLUE_OPS = ("Add", "Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool", "Concat", "Flatten", "Reshape")
"""Ops between int8 layers (residual adds, activations, pooling, reshapes) that are quantized with
them when every input they read is already int8: left in fp32, each would cost a dequantize and a
quantize and break onnxruntime's NHWC int8 chain with transposes (measured on the mnist CNN at
batch 1: 6 QuantizeLinear, 7 DequantizeLinear and 3 Transpose nodes around two fp32 islands)."""
_TABLE = "an embedding table is weight-only: int8_dynamic stores it in 8 bits and dequantizes the rows it looks up"
WHY_NOT = {
    ("Conv", "int4"): "int4 is weight-only MatMulNBits, a MatMul kernel: onnxruntime has no 4-bit Conv",
    ("Gather", "int8"): _TABLE,
    ("Gather", "int4"): _TABLE,
    ("Gather", "fp16"): _TABLE,
}


class _QuietPreprocessHint(logging.Filter):
    # quantize_static logs a generic "consider pre-processing" hint on every call; the exported
    # graph is already shape-inferred and BN-folded, so the hint is noise in a search's output.
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return "pre-processing" not in msg and "already quantized" not in msg


_QUIET = _QuietPreprocessHint()


@contextlib.contextmanager
def _quiet_hints():
    """The hint filter on the root logger while quantizing only: importing autocl changes no logger."""
    root = logging.getLogger()
    root.addFilter(_QUIET)
    try:
        yield
    finally:
        root.removeFilter(_QUIET)


class _FeedReader(CalibrationDataReader):
    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._feeds = feeds
        self._i = 0

    def get_next(self):
        if self._i >= len(self._feeds):
            return None
        self._i += 1
        return self._feeds[self._i - 1]

    def rewind(self) -> None:
        self._i = 0


def _op_types(model: onnx.ModelProto) -> dict[str, str]:
    return {n.name: n.op_type for n in model.graph.node}


def int8_glue(model: onnx.ModelProto, int8_nodes: list[str]) -> list[str]:
    """The :data:`GLUE_OPS` nodes whose every non-constant input comes from an int8 layer node or
    from another such glue node, in graph (topological) order; Adds only when no operand is a
    constant (residual joins, not biases)."""
    constants = {t.name for t in model.graph.initializer}
    constants |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    quantized = set(int8_nodes)
    int8_out: set[str] = set()
    glue: list[str] = []
    for node in model.graph.node:
        if node.name in quantized:
            int8_out.update(node.output)
            continue
        inputs = [i for i in node.input if i and i not in constants]
        # an Add with a constant operand is a Linear's bias (transformers), not a residual join: its
        # ranges follow the layer's, and histogram calibrators fail on some of them (MiniLM)
        if node.op_type == "Add" and len(inputs) < len([i for i in node.input if i]):
            continue
        if node.op_type in GLUE_OPS and inputs and all(i in int8_out for i in inputs):
            glue.append(node.name)
            int8_out.update(node.output)
    return glue


def reduce_range_default() -> bool:
    """7-bit weights (``reduce_range``) only where the CPU lacks int8 dot products (VNNI, AMX,
    dotprod): without them, uint8 x int8 products saturate; with them, 8-bit weights are as fast
    and more accurate."""
    from autocl.hardware import has_int8_dot

    return not has_int8_dot()


def precision_in_graph(cfg: QuantConfig, layer: str, ops: list[str]) -> str:
    """The precision ``layer`` (whose nodes are ``ops``) takes: its own, else the default, except
    that an embedding table not named in ``cfg.layers`` stays fp32 under a default it cannot take
    (``default: int8`` means every layer that can be int8; a table is weight-only)."""
    p = cfg.precision_of(layer)
    if layer not in cfg.layers and ops and all(op in EMBEDDING_OPS for op in ops):
        return p if p in OP_PRECISIONS["Gather"] else "fp32"
    return p


def check_precisions(cfg: QuantConfig, nodes: dict[str, list[str]], op_types: dict[str, str]) -> None:
    """Refuse unknown layers and precisions an op cannot take, naming the layer and the reason."""
    unknown = sorted(set(cfg.layers) - set(nodes))
    if unknown:
        raise ConfigError(f"unknown layer(s) {unknown}; known layers: {sorted(nodes)}", field="quant.layers")
    for layer, names in nodes.items():
        p = precision_in_graph(cfg, layer, [op_types.get(n, "?") for n in names])
        for n in names:
            op = op_types.get(n, "?")
            if p not in OP_PRECISIONS.get(op, ("fp32",)):
                why = WHY_NOT.get((op, p), f"onnxruntime cannot quantize {op} to {p}")
                raise ConfigError(f"layer {layer!r} ({op}) cannot be {p}: {why}", field=f"quant.layers.{layer}")


def qat_overrides(model: onnx.ModelProto, nodes: dict[str, list[str]], ranges: dict[str, dict]) -> dict:
    """``TensorQuantOverrides`` (``rmin``/``rmax``) of quantization-aware training's observed ranges
    (``autocl.compress.qat.unwrap``): each layer's input range on its nodes' activation input, its
    output range on their output where the trained output matches the op's (bias inside for Gemm and
    Conv, not for MatMul). A tensor two layers observed (Q, K and V read one input) takes the union."""
    by_name = {n.name: n for n in model.graph.node}
    found: dict[str, list[float]] = {}

    def add(tensor: str, rng) -> None:
        if rng:
            lo, hi = found.get(tensor, [rng[0], rng[1]])
            found[tensor] = [min(lo, rng[0]), max(hi, rng[1])]

    for layer, r in ranges.items():
        for name in nodes.get(layer, []):
            node = by_name.get(name)
            if node is None:
                continue
            add(node.input[0], r.get("input"))
            if (node.op_type in ("Gemm", "Conv")) == bool(r.get("output_has_bias")):
                add(node.output[0], r.get("output"))
    return {
        t: [{"rmin": np.array(lo, dtype=np.float32), "rmax": np.array(hi, dtype=np.float32)}]
        for t, (lo, hi) in found.items()
    }


def quantize_model(
    fp32_path: str | Path,
    out_path: str | Path,
    cfg: QuantConfig,
    nodes: dict[str, list[str]],
    calibration: list[dict[str, np.ndarray]],
    qat_ranges: dict[str, dict] | None = None,
) -> Path:
    """Write the mixed-precision model to ``out_path`` (a copy when every layer stays fp32).

    Args:
        fp32_path: The fp32 ONNX model.
        out_path: The quantized model to write.
        cfg: The precision of each layer (and the quantization settings).
        nodes: Maps each quantizable layer to its graph nodes (see ``layer_nodes``).
        calibration: A list of onnxruntime feeds (``Workload.calibration_feeds``), used by ``int8`` layers.
        qat_ranges: The activation ranges of a quantization-aware-trained student, which replace the
            calibrated ranges of the tensors they cover (see :func:`qat_overrides`).

    Returns:
        ``out_path``.

    Raises:
        ConfigError: A layer is unknown or cannot take its precision, or onnxruntime's fusions or
            quantizer left a chosen node out of its precision.
    """
    out_path = Path(out_path)
    model = onnx.load(str(fp32_path))
    op_types = _op_types(model)
    check_precisions(cfg, nodes, op_types)
    chosen: dict[str, list[str]] = {}
    for layer, names in nodes.items():
        chosen.setdefault(precision_in_graph(cfg, layer, [op_types.get(n, "?") for n in names]), []).extend(names)
    if set(chosen) <= {"fp32"}:
        shutil.copyfile(fp32_path, out_path)
        return out_path
    with _quiet_hints(), tempfile.TemporaryDirectory(prefix="autocl-quant-") as tmp:
        # calibration writes an augmented model next to its input; keep it out of the cache folder
        staged = Path(tmp) / "model.onnx"
        rewrite = set(chosen.get("int4", []))
        if chosen.get("int8_dynamic"):
            # onnxruntime's dynamic quantizer turns every Gemm of the graph into MatMul + Add under
            # new names; rewriting them first keeps each layer's node name (and so its precision)
            rewrite |= {n for n, op in op_types.items() if op == "Gemm"}
        if rewrite:
            gemm_to_matmul(model, rewrite)
            op_types = _op_types(model)
        onnx.save(model, str(staged))
        typed: dict = {}
        if cfg.fuse_first:
            model = fuse(staged, staged, [n for p, names in chosen.items() if p != "fp32" for n in names])
            op_types = _op_types(model)
            # fused contrib ops (BiasGelu, FusedMatMul) have no ONNX shape inference: say their type
            typed = {"DefaultTensorType": onnx.TensorProto.FLOAT}
        if chosen.get("int8"):
            glue = int8_glue(model, chosen["int8"])
            with contextlib.redirect_stdout(io.StringIO()):  # histogram calibrators print progress
                quantize_static(
                    str(staged),
                    str(staged),
                    _FeedReader(calibration),
                    quant_format=QuantFormat.QDQ,
                    per_channel=True,
                    reduce_range=reduce_range_default() if cfg.reduce_range is None else cfg.reduce_range,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    nodes_to_quantize=chosen["int8"] + glue,
                    calibrate_method=_CALIBRATION[cfg.calibration],
                    # calibrate only the chosen layers' and their glue's op types: histogram calibrators
                    # overflow on an attention mask's -3.4e38 entries if every Add/Where is collected
                    op_types_to_quantize=sorted({op_types[n] for n in chosen["int8"] + glue}),
                    extra_options={
                        "CalibTensorRangeSymmetric": False,
                        **typed,
                        "TensorQuantOverrides": qat_overrides(model, nodes, qat_ranges or {}),
                    },
                )
        if chosen.get("int8_dynamic"):
            quantize_dynamic(
                str(staged),
                str(staged),
                weight_type=QuantType.QInt8,
                per_channel=True,
                nodes_to_quantize=chosen["int8_dynamic"],
                op_types_to_quantize=["MatMul", "Conv", "Gather"],
                extra_options=typed,
            )
        model = onnx.load(str(staged))
        if chosen.get("int4"):
            model = _int4(model, chosen["int4"], cfg.int4_block_size)
        if chosen.get("fp16"):
            to_float16(model, set(chosen["fp16"]))
        onnx.checker.check_model(model)
        _verify(model, chosen)
        onnx.save(model, str(out_path))
    return out_path


NOT_FUSED = ("EmbedLayerNormFusion", "BiasGeluFusion", "SkipLayerNormFusion", "MatMulAddFusion")
"""Extended fusions that :func:`fuse` leaves out. An embedding lookup merged into
EmbedLayerNormalization could no longer be quantized on its own, nor could a Linear that was
rewritten as MatMul + Add for the dynamic quantizer and merged back into a Gemm under a new name
(the built-in ViT's classifier). The other two make a quantized
transformer slower: a Linear's bias folded into BiasGelu cannot go into the int8 MatMul kernel
(MatMulIntegerToFloat takes it), and SkipLayerNormalization ran slower than LayerNormalization + Add.
Measured on MiniLM int8 dynamic, AMD EPYC (AVX-512 VNNI), one interleaved run: 1.10x
``quantize_dynamic`` with every extended fusion, 1.14x without these (INC's tuned graph: 1.13x)."""


def fuse(src: Path, dst: Path, keep: list[str]) -> onnx.ModelProto:
    """Write ``src`` with onnxruntime's extended graph optimizations applied (CPU provider, less
    :data:`NOT_FUSED`), the fusions a session would make at load time, so that quantization keeps them. The nodes in
    ``keep`` (the layers to quantize) must come out of it unchanged: a layer fused into another op
    (a Conv into FusedConv) can no longer be quantized, which is an error naming it."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(dst)
    opts.log_severity_level = 3
    ort.InferenceSession(str(src), opts, providers=["CPUExecutionProvider"], disabled_optimizers=list(NOT_FUSED))
    model = onnx.load(str(dst))
    ops = _op_types(model)
    lost = [n for n in keep if ops.get(n) not in OP_PRECISIONS]
    if lost:
        raise ConfigError(
            f"onnxruntime's fusions merged node(s) {lost[:3]} into other ops, which cannot be "
            "quantized; set quant.fuse_first to false for this model",
            field="quant.fuse_first",
        )
    return model


def _nbits_quantizer():
    """Import onnxruntime's MatMulNBits quantizer without its side effect: on import it calls
    ``logging.basicConfig(level=INFO)``, which would print every skipped node of every trial."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    for h in root.handlers[:]:
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    return MatMulNBitsQuantizer


def _int4(model: onnx.ModelProto, node_names: list[str], block_size: int) -> onnx.ModelProto:
    MatMulNBitsQuantizer = _nbits_quantizer()

    # nodes_to_include widens op_types_to_quantize instead of narrowing it: exclude the others
    wanted = set(node_names)
    others = [n.name for n in model.graph.node if n.op_type == "MatMul" and n.name not in wanted]
    q = MatMulNBitsQuantizer(
        model,
        bits=4,
        block_size=block_size,
        is_symmetric=True,
        nodes_to_exclude=others,
        op_types_to_quantize=("MatMul",),
    )
    q.process()
    return q.model.model


def _verify(model: onnx.ModelProto, chosen: dict[str, list[str]]) -> None:
    """Every node chosen for a precision must run in it: a quantizer that skipped a node (a weight
    that is not a constant, an unsupported pattern) is an error, not a silent fp32 layer."""
    found = graph_precisions(model)
    by_origin = {}
    for name, precision in found.items():
        for suffix in ("_quant", "_Q4", "_Q8"):
            if name.endswith(suffix):
                name = name[: -len(suffix)]
        by_origin[name] = precision
    for precision, names in chosen.items():
        if precision == "fp32":
            continue
        missed = [n for n in names if by_origin.get(n) != precision]
        if missed:
            raise ConfigError(
                f"onnxruntime's quantizer left node(s) {missed[:3]} out of {precision} "
                f"(found {[by_origin.get(n, 'no node') for n in missed[:3]]}); choose another "
                "precision for their layer",
                field="quant.layers",
            )


def quantized_nodes(model_path: str | Path) -> set[str]:
    """Names of the compute nodes that run with 8-bit static QDQ weights (see ``graph_precisions``).

    Args:
        model_path: The quantized ONNX artifact.

    Returns:
        The nodes' names.
    """
    return {n for n, p in graph_precisions(onnx.load(str(model_path))).items() if p == "int8"}


def layer_precisions(model_path: str | Path, layer_names: list[str]) -> dict[str, set[str]]:
    """For each layer, the set of precisions its nodes run in inside the artifact at ``model_path``.

    Read from the kernels, not from the config.

    Args:
        model_path: The quantized ONNX artifact.
        layer_names: The layers' names.

    Returns:
        ``{layer: {precision, ...}}``.
    """
    from autocl.compress.onnx_export import module_of

    found: dict[str, set[str]] = {name: set() for name in layer_names}
    for node, precision in graph_precisions(onnx.load(str(model_path))).items():
        owner = module_of(node)
        if owner in found:
            found[owner].add(precision)
    return found
