"""Small ONNX models built directly (no torch): a fast and a slow artifact, a big-weights one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def matmul_model(path: Path, n: int, *, batch: int = 4, layers: int = 1, seed: int = 0) -> Path:
    """``layers`` chained y = x @ W (W: n x n float32): latency and weights grow with n and layers."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits, nodes, prev = [], [], "x"
    for i in range(layers):
        w = (rng.standard_normal((n, n)) / np.sqrt(n)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        out = "y" if i == layers - 1 else f"h{i}"
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [out]))
        prev = out
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n])
    model = helper.make_model(helper.make_graph(nodes, "mm", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path


N = 256


def feed_for(n: int = N, batch: int = 4) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(1).standard_normal((batch, n)).astype(np.float32)}


@pytest.fixture(scope="module")
def small_and_large(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return matmul_model(d / "small.onnx", N), matmul_model(d / "large.onnx", N, layers=8)
