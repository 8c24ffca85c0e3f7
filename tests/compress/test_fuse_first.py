"""``quant.fuse_first``: onnxruntime's extended fusions are applied before quantizing, and they survive it."""

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from autocl.compress import layer_nodes, quantize_model
from autocl.compress.onnx_export import export_onnx
from autocl.config import QuantConfig
from autocl.errors import ConfigError


class _Block(nn.Module):
    """A transformer FFN: Linear + bias + GELU (erf), the pattern ORT fuses into Gelu (and BiasGelu,
    which ``fuse`` leaves out)."""

    def __init__(self) -> None:
        super().__init__()
        self.up, self.down = nn.Linear(32, 64), nn.Linear(64, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(nn.functional.gelu(self.up(x)))


def _export(model: nn.Module, example: torch.Tensor, path) -> dict[str, list[str]]:
    torch.manual_seed(0)
    export_onnx(model.eval(), (example,), path, input_names=["x"], dynamic_axes=None)
    return layer_nodes(path, ["up", "down"])


def _run(path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def _ops(path) -> Counter:
    return Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def test_fusions_made_first_survive_dynamic_int8(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(4, 16, 32)
    nodes = _export(_Block(), x, tmp_path / "fp32.onnx")
    plain, fused = tmp_path / "plain.onnx", tmp_path / "fused.onnx"
    quantize_model(tmp_path / "fp32.onnx", plain, QuantConfig(default="int8_dynamic"), nodes, [])
    quantize_model(tmp_path / "fp32.onnx", fused, QuantConfig(default="int8_dynamic", fuse_first=True), nodes, [])
    assert _ops(plain)["Erf"] == 1 and "Gelu" not in _ops(plain)  # the exported erf pattern, unfused
    # fused first: one Gelu kernel, and the bias left to the int8 MatMul kernel, not folded into BiasGelu
    assert _ops(fused)["Gelu"] == 1 and "BiasGelu" not in _ops(fused) and _ops(fused)["MatMulInteger"] == 2
    ref, a, b = _run(tmp_path / "fp32.onnx", x.numpy()), _run(plain, x.numpy()), _run(fused, x.numpy())
    assert np.abs(b - a).max() < 1e-4 * np.abs(ref).max() + 1e-5  # same arithmetic, other kernels
    assert np.abs(b - ref).max() < 0.05 * np.abs(ref).max()


def test_fusions_first_keep_static_int8_layers(tmp_path):
    x = torch.randn(4, 16, 32)
    nodes = _export(_Block(), x, tmp_path / "fp32.onnx")
    out = tmp_path / "q.onnx"
    feeds = [{"x": torch.randn(4, 16, 32).numpy()} for _ in range(4)]
    quantize_model(tmp_path / "fp32.onnx", out, QuantConfig(default="int8", fuse_first=True), nodes, feeds)
    assert _ops(out)["QuantizeLinear"] >= 2 and np.isfinite(_run(out, x.numpy())).all()


def test_a_layer_fused_away_is_an_error_naming_the_knob(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())  # Conv + Relu -> FusedConv
    path = tmp_path / "conv.onnx"
    export_onnx(model.eval(), (torch.randn(1, 3, 8, 8),), path, input_names=["x"], dynamic_axes=None)
    nodes = layer_nodes(path, ["0"])
    with pytest.raises(ConfigError, match="fuse_first"):
        quantize_model(path, tmp_path / "q.onnx", QuantConfig(default="int8_dynamic", fuse_first=True), nodes, [])


class _Classifier(nn.Module):
    """A ViT's head: a Linear on a 2-D input (the class token), exported as Gemm."""

    def __init__(self) -> None:
        super().__init__()
        self.up, self.head = nn.Linear(32, 32), nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(nn.functional.gelu(self.up(x))[:, 0])


def test_a_gemm_rewritten_for_dynamic_int8_is_not_merged_back_by_the_fusions(tmp_path):
    """The dynamic quantizer needs Gemm as MatMul + Add; onnxruntime's MatMulAddFusion would merge them
    back into a Gemm under a new name, and the built-in ViT's fused recipe failed on its classifier."""
    torch.manual_seed(0)
    x = torch.randn(4, 16, 32)
    path = tmp_path / "fp32.onnx"
    export_onnx(_Classifier().eval(), (x,), path, input_names=["x"], dynamic_axes=None)
    assert "Gemm" in _ops(path)
    nodes = layer_nodes(path, ["up", "head"])
    out = tmp_path / "q.onnx"
    quantize_model(path, out, QuantConfig(default="int8_dynamic", fuse_first=True), nodes, [])
    assert _ops(out)["MatMulInteger"] == 2 and "Gemm" not in _ops(out)
    ref, q = _run(path, x.numpy()), _run(out, x.numpy())
    assert np.abs(q - ref).max() < 0.05 * np.abs(ref).max()
