"""Quantization-aware training: the fake-quantized student computes what ORT's int8 kernels compute,
and exports to the same QDQ graph as post-training quantization."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from autocl.compress import qat
from autocl.compress.onnx_export import export_onnx, layer_nodes
from autocl.compress.quantize import quantize_model, reduce_range_default
from autocl.config import CompressionConfig, DistillConfig, QuantConfig


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(16, 32), nn.Linear(32, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


def _run(path, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


@pytest.mark.parametrize("shape", [(64, 16), (16, 4, 16)], ids=["gemm", "matmul"])
def test_fake_quant_matches_onnxruntime_int8(tmp_path, shape):
    """2-D inputs export Linear as Gemm (bias inside the quantized output), 3-D ones as MatMul + Add
    (output quantized before the bias): either way the trained ranges reach ORT, and its int8 model
    gives the fake-quantized outputs to within one output quantization step."""
    torch.manual_seed(0)
    model = Tiny()
    x = torch.randn(*shape) * 2
    calibration = torch.randn(*shape) * 3  # PTQ calibrates on other rows than training saw
    reduce = reduce_range_default()
    assert qat.wrap(model, ["fc1", "fc2"], reduce) == ["fc1", "fc2"]
    model.train()
    for _ in range(3):
        model(x)
    model.eval()
    with torch.no_grad():
        fake = model(x).numpy()
    ranges = qat.unwrap(model)
    assert set(ranges) == {"fc1", "fc2"} and all(r["input"] and r["output"] for r in ranges.values())
    fp32 = export_onnx(model, (x[:1],), tmp_path / "fp32.onnx")
    cfg = QuantConfig(default="int8", reduce_range=reduce)
    feeds = [{"input": calibration.numpy()}]
    nodes = layer_nodes(fp32, ["fc1", "fc2"])
    quantize_model(fp32, tmp_path / "qat.onnx", cfg, nodes, feeds, ranges)
    quantize_model(fp32, tmp_path / "ptq.onnx", cfg, nodes, feeds)
    got = _run(tmp_path / "qat.onnx", x.numpy())
    step = qat.activation_qparams(*ranges["fc2"]["output"])[0]
    assert np.abs(got - fake).max() <= 1.01 * step
    # the same op types as post-training quantization: only the scales differ
    ops = [Counter(n.op_type for n in onnx.load(str(tmp_path / p)).graph.node) for p in ("qat.onnx", "ptq.onnx")]
    assert ops[0] == ops[1] and ops[0]["QuantizeLinear"] > 0
    scales = [{i.name: onnx.numpy_helper.to_array(i).tolist() for i in onnx.load(str(tmp_path / p)).graph.initializer
               if i.name.endswith("_scale")} for p in ("qat.onnx", "ptq.onnx")]
    assert scales[0] != scales[1]  # the ranges training observed, not the calibration rows' ones


def test_weights_fake_quantize_like_ort_per_channel():
    w = torch.randn(6, 10)
    lo, hi = qat.weight_qrange(False)
    q = qat.fake_quant_weight(w, lo, hi)
    scale = w.abs().amax(1, keepdim=True) / 127
    assert torch.allclose(q, torch.round(w / scale).clamp(-127, 127) * scale, atol=1e-6)
    assert qat.weight_qrange(True) == (-64, 64)


def test_straight_through_estimator_passes_gradients():
    layer = qat.FakeQuantLayer(nn.Linear(4, 3), -127, 127).train()
    x = torch.randn(8, 4, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0 and layer.layer.weight.grad.abs().sum() > 0


def test_qat_student_key_depends_on_the_static_int8_layers():
    base = CompressionConfig(distill=DistillConfig(steps=5))
    ptq_a = base.model_copy(update={"quant": QuantConfig(default="int8")})
    ptq_b = base.model_copy(update={"quant": QuantConfig(default="fp32")})
    assert ptq_a.student_key("w") == ptq_b.student_key("w") == base.student_key("w")
    qat_a = base.model_copy(update={"quant": QuantConfig(default="int8", qat=True)})
    qat_b = base.model_copy(update={"quant": QuantConfig(default="int8", layers={"fc": "fp32"}, qat=True)})
    qat_none = base.model_copy(update={"quant": QuantConfig(default="int8_dynamic", qat=True)})
    assert len({qat_a.student_key("w"), qat_b.student_key("w"), base.student_key("w")}) == 3
    assert qat_none.student_key("w") == base.student_key("w")  # no static int8 layer: nothing to train


def test_qat_student_exports_to_the_same_qdq_graph_as_ptq(digits, tmp_path_factory):
    from autocl.compress import Compressor

    comp = Compressor(digits, tmp_path_factory.mktemp("cache"))
    quant = QuantConfig(default="int8", calibration_samples=16)
    ptq = comp.artifact(CompressionConfig(quant=quant))
    trained = comp.artifact(CompressionConfig(distill=DistillConfig(steps=4, batch_size=32),
                                              quant=quant.model_copy(update={"qat": True})))
    assert trained.student.qat_ranges and not ptq.student.qat_ranges
    assert trained.student.key != ptq.student.key
    ops = [Counter(n.op_type for n in onnx.load(str(a.path)).graph.node) for a in (ptq, trained)]
    assert ops[0] == ops[1]
    assert trained.int8_layers == ptq.int8_layers
