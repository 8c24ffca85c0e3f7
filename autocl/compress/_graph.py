"""Small ONNX graph rewrites the quantization passes need, and reading precisions back from a graph.

* ``gemm_to_matmul``: onnxruntime's dynamic int8 and int4 (MatMulNBits) quantizers only handle
  MatMul, so a Gemm layer chosen for them is first rewritten as MatMul + Add (same node name, so
  the layer still finds its node).
* ``to_float16``: a layer's weights stored in float16 and its compute done in float16, with a Cast
  on the way in and out; the rest of the graph stays float32.
* ``graph_precisions``: which precision each compute node of a finished artifact really runs in,
  read from the kernels in the graph (the tests and ``autocl layers`` use it).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from autocl.compress.onnx_export import EMBEDDING_OPS, LAYER_OPS


def _initializers(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    return {t.name: t for t in model.graph.initializer}


def _attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def gemm_to_matmul(model: onnx.ModelProto, node_names: set[str]) -> None:
    """Rewrite the named Gemm nodes (constant B, alpha = beta = 1, no transA) as MatMul (+ Add), in
    place. The MatMul keeps the Gemm's name; Gemms that do not fit that pattern are left alone."""
    inits = _initializers(model)
    new_nodes: list[onnx.NodeProto] = []
    for node in model.graph.node:
        if (
            node.op_type != "Gemm"
            or node.name not in node_names
            or node.input[1] not in inits
            or _attr(node, "transA", 0)
            or _attr(node, "alpha", 1.0) != 1.0
            or _attr(node, "beta", 1.0) != 1.0
        ):
            new_nodes.append(node)
            continue
        w = numpy_helper.to_array(inits[node.input[1]])
        if _attr(node, "transB", 0):
            w = w.T
        w_name = f"{node.input[1]}__matmul"
        model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(w), w_name))
        has_bias = len(node.input) > 2 and node.input[2]
        mm_out = f"{node.output[0]}__mm" if has_bias else node.output[0]
        new_nodes.append(helper.make_node("MatMul", [node.input[0], w_name], [mm_out], name=node.name))
        if has_bias:
            new_nodes.append(
                helper.make_node("Add", [mm_out, node.input[2]], [node.output[0]], name=node.name + "_bias")
            )
    del model.graph.node[:]
    model.graph.node.extend(new_nodes)
    _drop_unused_initializers(model)


def to_float16(model: onnx.ModelProto, node_names: set[str]) -> None:
    """Make the named Conv/Gemm/MatMul nodes compute in float16, in place: their constant inputs are
    stored as float16 copies, activations are cast to float16 on the way in and back to float32 on
    the way out."""
    inits = _initializers(model)
    new_nodes: list[onnx.NodeProto] = []
    for node in model.graph.node:
        if node.name not in node_names or node.op_type not in LAYER_OPS:
            new_nodes.append(node)
            continue
        inputs = []
        for i, name in enumerate(node.input):
            if not name:
                inputs.append(name)
            elif name in inits:
                half = f"{name}__fp16"
                if half not in inits:
                    t = numpy_helper.from_array(numpy_helper.to_array(inits[name]).astype(np.float16), half)
                    model.graph.initializer.append(t)
                    inits[half] = t
                inputs.append(half)
            else:
                cast = f"{name}__to_fp16_{node.name}"
                new_nodes.append(
                    helper.make_node("Cast", [name], [cast], to=TensorProto.FLOAT16, name=f"{node.name}_cast_in{i}")
                )
                inputs.append(cast)
        out = node.output[0]
        half_out = f"{out}__fp16"
        del node.input[:]
        node.input.extend(inputs)
        node.output[0] = half_out
        new_nodes.append(node)
        new_nodes.append(
            helper.make_node("Cast", [half_out], [out], to=TensorProto.FLOAT, name=f"{node.name}_cast_out")
        )
    del model.graph.node[:]
    model.graph.node.extend(new_nodes)
    _drop_unused_initializers(model)
    # value_info recorded by shape inference still says float for the renamed tensors: drop it
    del model.graph.value_info[:]


def _drop_unused_initializers(model: onnx.ModelProto) -> None:
    used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
    for a in (n.attribute for n in model.graph.node):
        for attr in a:
            if attr.type == onnx.AttributeProto.GRAPH:
                used |= {i for n in attr.g.node for i in n.input}
    keep = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)


def graph_precisions(model: onnx.ModelProto) -> dict[str, str]:
    """For every compute node of the artifact, the precision its kernel runs in, keyed by node name
    (quantizers add suffixes such as ``_quant`` or ``_Q4`` to the original name):

    ``int4`` MatMulNBits; ``int8_dynamic`` MatMulInteger/ConvInteger; ``int8`` a Conv/Gemm/MatMul whose
    weight comes through a DequantizeLinear of an int8 initializer (QDQ, fused into an int8 kernel
    by onnxruntime); ``fp16`` a Conv/Gemm/MatMul with a float16 weight; ``fp32`` otherwise. An
    embedding lookup (a Gather reading a constant table) is ``int8_dynamic`` when its table is stored
    in 8 bits (onnxruntime's dynamic quantizer: the rows are gathered in 8 bits, then dequantized) and
    ``fp32`` when the table is float.
    """
    inits = _initializers(model)
    low_bit = {n for n, t in inits.items() if t.data_type in (TensorProto.INT8, TensorProto.UINT8)}
    dq_out = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in low_bit}
    found: dict[str, str] = {}
    for node in model.graph.node:
        if node.op_type == "MatMulNBits":
            found[node.name] = "int4"
        elif node.op_type in ("MatMulInteger", "ConvInteger"):
            found[node.name] = "int8_dynamic"
        elif node.op_type in EMBEDDING_OPS and node.input[0] in inits:
            table = inits[node.input[0]].data_type
            found[node.name] = "int8_dynamic" if table in (TensorProto.INT8, TensorProto.UINT8) else "fp32"
        elif node.op_type in LAYER_OPS and len(node.input) > 1:
            w = node.input[1]
            if w in dq_out:
                found[node.name] = "int8"
            elif w in inits and inits[w].data_type == TensorProto.FLOAT16:
                found[node.name] = "fp16"
            else:
                found[node.name] = "fp32"
    return found
