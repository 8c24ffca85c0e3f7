"""A layer quantized to an integer precision must run an integer kernel on the profile's provider."""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx

from autocl.compress.quantize import quantize_model
from autocl.compress.support import _NODE, _probe_model, float_between_conversions, unsupported_reason
from autocl.config import QuantConfig


def _qdq(op: str) -> onnx.ModelProto:
    """The QDQ model a trial makes, before onnxruntime optimizes it (DequantizeLinear -> float op)."""
    model, feed = _probe_model(op)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "a.onnx", Path(tmp) / "b.onnx"
        onnx.save(model, str(src))
        quantize_model(src, dst, QuantConfig(default="int8", calibration_samples=1), {"probe": [_NODE[op]]}, [feed])
        return onnx.load(str(dst))


def test_a_qdq_graph_left_unfused_is_float_between_conversions():
    # what a provider without QDQ fusion runs (CUDA without TensorRT): DequantizeLinear, then a float Conv
    why = float_between_conversions("Conv", "int8", "CUDAExecutionProvider", _qdq("Conv"))
    assert why and "no integer kernel" in why and "DequantizeLinear" in why and "CUDAExecutionProvider" in why


def test_the_cpu_provider_fuses_qdq_into_integer_kernels():
    for op in ("Conv", "Gemm", "MatMul"):
        assert unsupported_reason(op, "int8", "CPUExecutionProvider") is None
        assert unsupported_reason(op, "int8_dynamic", "CPUExecutionProvider") is None


def test_weight_only_tables_and_float_precisions_are_not_checked():
    graph = _qdq("Conv")
    assert float_between_conversions("Gather", "int8_dynamic", "CUDAExecutionProvider", graph) is None
    assert float_between_conversions("Conv", "fp16", "CUDAExecutionProvider", graph) is None
