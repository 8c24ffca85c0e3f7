"""Each layer's share of an artifact's latency, from onnxruntime's own per-node profiler.

The caller says which graph nodes make each layer (``layer -> node names``, as
``autocl.compress.layer_nodes`` finds them), so this measurement needs no torch. The session is opened as the profile says (provider, threads, optimization level), so the nodes
profiled are the kernels that really run (fused Conv+Relu, QLinearConv, reorders, ...). The
session's optimized graph is saved beside the profile to attribute each kernel to a layer: a kernel
belongs to a layer when it consumes one of the layer's initializers (its weight or bias, directly or
as the quantized tensor a DequantizeLinear read), which survives fusion; failing that, when its name
carries the layer's module scope (``/stages/stages.0/conv1/...``). The rest (reorders, transposes,
activations outside layers) is reported as ``other``. Shares are ratios of per-node mean kernel
times; the profiler's overhead inflates absolute times, so only shares are given. The device's
measurement lease is held while the session runs, as for every latency measurement.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

from autocl.hardware._lease import DeviceLease
from autocl.hardware._measure import session_options
from autocl.hardware._profile import HardwareProfile

OTHER = "other"


def _layer_keys(graph, layer_nodes: dict[str, list[str]]) -> tuple[dict[str, set[str]], dict[str, str]]:
    """Per layer: the initializer names its nodes read (through one DequantizeLinear for QDQ
    weights), and the node-name prefix of its module scope."""
    inits = {i.name for i in graph.graph.initializer}
    dq = {n.output[0]: n.input[0] for n in graph.graph.node if n.op_type == "DequantizeLinear"}
    nodes = {n.name: n for n in graph.graph.node}
    keys, scopes = {}, {}
    for layer, names in layer_nodes.items():
        names = [n for n in names if n in nodes]
        if not names:
            continue
        scopes[layer] = names[0].rsplit("/", 1)[0] + "/"
        keys[layer] = {dq.get(i, i) for n in names for i in nodes[n].input[1:]} & inits
    return keys, scopes


_FUSED_ACTIVATIONS = ("Relu", "Clip", "Sigmoid", "LeakyRelu", "HardSigmoid")


def _tensor_owners(graph, layer_nodes: dict[str, list[str]]) -> dict[str, str]:
    """Tensor name -> layer, for each layer's outputs and the activation applied to them: ORT's
    NCHWc rewrite of an fp32 convolution fused with its activation names the new node after the
    activation's output (``/stages/stages.0/Relu_output_0_nchwc``) and renames its weights."""
    nodes = {n.name: n for n in graph.graph.node}
    owner = {o: layer for layer, names in layer_nodes.items() for n in names if n in nodes for o in nodes[n].output}
    for n in graph.graph.node:
        if n.op_type in _FUSED_ACTIVATIONS and n.input and n.input[0] in owner:
            owner.update({o: owner[n.input[0]] for o in n.output})
    return owner


def _owners(
    optimized, keys: dict[str, set[str]], scopes: dict[str, str], tensors: dict[str, str] | None = None
) -> dict[str, str]:
    inits = {i.name for i in optimized.graph.initializer}
    owner = {}
    for node in optimized.graph.node:
        used = {i for i in node.input if i in inits}
        by_key = next((layer for layer, k in keys.items() if used & k), None)
        by_scope = next((layer for layer, scope in scopes.items() if node.name.startswith(scope)), None)
        by_tensor = (tensors or {}).get(node.name.removesuffix("_nchwc")) if node.name.endswith("_nchwc") else None
        owner[node.name] = by_key or by_scope or by_tensor or OTHER
    return owner


def layer_latency_shares(
    path: Path,
    profile: HardwareProfile,
    feed: dict[str, np.ndarray],
    layer_nodes: dict[str, list[str]],
    *,
    runs: int = 30,
) -> dict[str, float]:
    """Share of the summed per-node kernel time spent in each layer (and in ``other``), running
    ``feed`` through the artifact at ``path`` here, as ``profile`` says.

    Args:
        path: the ONNX artifact.
        profile: provider, threads and optimization level of the session (a local profile).
        feed: one batch of inputs (``Workload.sample_feed``).
        layer_nodes: for each layer, the names of its compute nodes in the artifact's graph.
        runs: profiled runs after the warm-up.

    Returns:
        ``{layer: share}`` for every layer and ``other``, summing to 1; empty when nothing was timed.
    """
    import onnx

    layers = tuple(layer_nodes)
    original = onnx.load(str(path))
    keys, scopes = _layer_keys(original, layer_nodes)
    tensors = _tensor_owners(original, layer_nodes)
    opts = session_options(profile.threads, allow_spinning=profile.allow_spinning, level=profile.graph_optimization)
    with tempfile.TemporaryDirectory() as tmp, DeviceLease(timeout_s=profile.measurement.lease_timeout_s):
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "ort")
        opts.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        sess = ort.InferenceSession(
            str(path), sess_options=opts, providers=[(profile.execution_provider, dict(profile.provider_options))]
        )
        for _ in range(max(2, profile.measurement.warmup) + runs):
            sess.run(None, feed)
        events = json.loads(Path(sess.end_profiling()).read_text())
        owner = _owners(onnx.load(opts.optimized_model_filepath), keys, scopes, tensors)
    per_node: dict[str, list[float]] = {}
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            per_node.setdefault(e["name"][: -len("_kernel_time")], []).append(float(e.get("dur", 0)))
    totals = dict.fromkeys([*layers, OTHER], 0.0)
    for node, durations in per_node.items():
        fallback = next((layer for layer, scope in scopes.items() if node.startswith(scope)), OTHER)
        # the profiler counts whole microseconds: a tiny layer's median can be 0 where its mean is not
        totals[owner.get(node, fallback)] += float(np.mean(durations))
    whole = sum(totals.values())
    return {k: v / whole for k, v in totals.items()} if whole > 0 else {}


__all__ = ["OTHER", "layer_latency_shares"]
