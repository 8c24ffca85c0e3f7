"""Each layer's share of an artifact's latency, from onnxruntime's own per-node profiler.

The session is opened as the profile says (provider, threads, optimization level), so the nodes
profiled are the kernels that really run (fused QLinearConv, reorders, ...). A node belongs to a
layer when its name carries the layer's module scope (``/stages/stages.0/conv1/...``), which the
exporter gives every node a module emits, and which onnxruntime's fusions keep; the rest (reorders,
transposes, activations outside layers) is reported as ``other``. Shares are ratios of per-node
median kernel times; the profiler's overhead inflates absolute times, so only shares are given.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

OTHER = "other"


def layer_scopes(graph: Path, layers: tuple[str, ...]) -> dict[str, str]:
    """Layer name -> the node-name prefix of its module scope (``/stages/stages.0/conv1/``)."""
    from autocl.compress.onnx_export import layer_nodes

    scopes = {}
    for layer, nodes in layer_nodes(graph, list(layers)).items():
        if nodes:
            scopes[layer] = nodes[0].rsplit("/", 1)[0] + "/"
    return scopes


def layer_latency_shares(path: Path, profile, feed: dict[str, np.ndarray], layers: tuple[str, ...], *,
                         runs: int = 30) -> dict[str, float]:
    """Share of the summed per-node kernel time spent in each layer (and in ``other``)."""
    import onnxruntime as ort

    from autocl.hardware import session_options

    scopes = layer_scopes(path, layers)
    opts = session_options(profile.threads, allow_spinning=profile.allow_spinning, level=profile.graph_optimization)
    with tempfile.TemporaryDirectory() as tmp:
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "ort")
        sess = ort.InferenceSession(str(path), sess_options=opts,
                                    providers=[(profile.execution_provider, dict(profile.provider_options))])
        for _ in range(max(2, profile.measurement.warmup) + runs):
            sess.run(None, feed)
        events = json.loads(Path(sess.end_profiling()).read_text())
    per_node: dict[str, list[float]] = {}
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time"):
            per_node.setdefault(e["name"][: -len("_kernel_time")], []).append(float(e.get("dur", 0)))
    totals = dict.fromkeys([*layers, OTHER], 0.0)
    for node, durations in per_node.items():
        owner = next((layer for layer, scope in scopes.items() if node.startswith(scope)), OTHER)
        totals[owner] += float(np.median(durations))
    whole = sum(totals.values())
    return {k: v / whole for k, v in totals.items()} if whole > 0 else {}


__all__ = ["OTHER", "layer_latency_shares", "layer_scopes"]
