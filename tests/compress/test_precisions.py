"""Each precision is a real kernel in the written graph, on the layers chosen and nowhere else."""

from collections import Counter

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from autocl.compress import Compressor, export_onnx, layer_nodes, quantize_model
from autocl.compress.quantize import layer_precisions
from autocl.compress.support import unsupported_reason
from autocl.config import CompressionConfig, QuantConfig
from autocl.errors import ConfigError


class TinyMLP(nn.Module):
    """Linear layers on 3-D inputs, as in a transformer: they export as MatMul + Add."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Linear(64, 128)
        self.down = nn.Linear(128, 64)
        self.head = nn.Linear(64, 64)

    def forward(self, x):
        return self.head(self.down(torch.relu(self.up(x))))


LAYERS = ["up", "down", "head"]


@pytest.fixture(scope="module")
def mlp_onnx(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("mlp") / "mlp.onnx"
    return export_onnx(TinyMLP().eval(), (torch.randn(1, 6, 64),), path)


def _feeds(n=2):
    rng = np.random.default_rng(0)
    return [{"input": rng.standard_normal((4, 6, 64)).astype(np.float32)} for _ in range(n)]


def _run(path, feed):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)[0]


def test_linear_layers_on_3d_inputs_map_to_their_matmul_nodes(mlp_onnx):
    nodes = layer_nodes(mlp_onnx, LAYERS)
    ops = {n.name: n.op_type for n in onnx.load(str(mlp_onnx)).graph.node}
    assert all(len(v) == 1 and ops[v[0]] == "MatMul" for v in nodes.values()), nodes


@pytest.mark.parametrize("precision", ["fp16", "int8", "int8_dynamic", "int4"])
def test_each_precision_is_the_kernel_in_the_graph_and_only_on_its_layer(mlp_onnx, tmp_path, precision):
    cfg = QuantConfig(layers={"down": precision}, calibration_samples=8)
    out = quantize_model(mlp_onnx, tmp_path / "q.onnx", cfg, layer_nodes(mlp_onnx, LAYERS), _feeds())
    found = layer_precisions(out, LAYERS)
    assert found == {"up": {"fp32"}, "down": {precision}, "head": {"fp32"}}
    feed = _feeds(1)[0]
    ref, got = _run(mlp_onnx, feed), _run(out, feed)
    assert got.shape == ref.shape and np.isfinite(got).all()
    assert np.abs(got - ref).max() < 0.1 * np.abs(ref).max()  # close, not wrecked


def test_the_int4_layer_is_matmulnbits_with_the_chosen_block_size(mlp_onnx, tmp_path):
    cfg = QuantConfig(layers={"up": "int4", "head": "int4"}, int4_block_size=16)
    out = quantize_model(mlp_onnx, tmp_path / "q4.onnx", cfg, layer_nodes(mlp_onnx, LAYERS), _feeds())
    nbits = [n for n in onnx.load(str(out)).graph.node if n.op_type == "MatMulNBits"]
    assert len(nbits) == 2
    for n in nbits:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        assert attrs["bits"] == 4 and attrs["block_size"] == 16


def test_mixed_precisions_coexist_in_one_graph(mlp_onnx, tmp_path):
    cfg = QuantConfig(layers={"up": "int8", "down": "int8_dynamic", "head": "int4"}, calibration_samples=8)
    out = quantize_model(mlp_onnx, tmp_path / "mixed.onnx", cfg, layer_nodes(mlp_onnx, LAYERS), _feeds())
    assert layer_precisions(out, LAYERS) == {"up": {"int8"}, "down": {"int8_dynamic"}, "head": {"int4"}}
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "MatMulInteger", "MatMulNBits"} <= ops


def test_int4_on_a_conv_is_refused_with_the_reason(digits, tmp_path_factory):
    comp = Compressor(digits, tmp_path_factory.mktemp("cache4"))
    with pytest.raises(ConfigError, match="no 4-bit Conv") as exc:
        comp.artifact(CompressionConfig(quant=QuantConfig(layers={"stem.0": "int4"})))
    assert "quant.layers.stem.0" in str(exc.value)


def test_gemm_layers_take_dynamic_int8_and_int4_after_rewriting(digits, tmp_path_factory):
    comp = Compressor(digits, tmp_path_factory.mktemp("cachegemm"))
    for p in ("int8_dynamic", "int4"):
        art = comp.artifact(CompressionConfig(quant=QuantConfig(layers={"fc": p, "stem.0": "int8_dynamic"},
                                                                calibration_samples=16)))
        found = layer_precisions(art.path, comp.layers)
        assert found["fc"] == {p} and found["stem.0"] == {"int8_dynamic"}
        assert found["stages.0.conv1"] == {"fp32"}
        expected = Counter({"fp32": len(comp.layers) - 2, "int8_dynamic": 1})
        expected[p] += 1
        assert art.details()["precisions"] == dict(expected)


def test_calibration_method_changes_the_int8_artifact(digits, tmp_path_factory):
    comp = Compressor(digits, tmp_path_factory.mktemp("cachecal"))
    shas = {m: comp.artifact(CompressionConfig(quant=QuantConfig(default="int8", calibration=m, calibration_samples=64))).sha256
            for m in ("minmax", "percentile")}
    assert shas["minmax"] != shas["percentile"]


def test_cpu_provider_refuses_fp16_with_the_reason_and_runs_the_int8_kinds():
    why = unsupported_reason("MatMul", "fp16", "CPUExecutionProvider")
    assert why and "Cast" in why and "float32" in why
    assert unsupported_reason("Conv", "int4", "CPUExecutionProvider")
    for op, p in (("Conv", "int8"), ("MatMul", "int8_dynamic"), ("MatMul", "int4"), ("Gemm", "int8")):
        assert unsupported_reason(op, p, "CPUExecutionProvider") is None, (op, p)


def test_static_int8_gemm_beside_dynamic_layers_keeps_its_precision(digits, tmp_path_factory):
    # onnxruntime's dynamic quantizer rewrites every Gemm; the static layer must stay int8 anyway
    comp = Compressor(digits, tmp_path_factory.mktemp("cachemix"))
    art = comp.artifact(CompressionConfig(quant=QuantConfig(layers={"fc": "int8", "stem.0": "int8_dynamic"},
                                                            calibration_samples=32)))
    found = layer_precisions(art.path, comp.layers)
    assert found["fc"] == {"int8"} and found["stem.0"] == {"int8_dynamic"}


def test_static_and_dynamic_layers_reading_the_same_tensor_build(digits, tmp_path_factory):
    # stages.1.conv1 and its shortcut read the same activation: one static, one dynamic
    comp = Compressor(digits, tmp_path_factory.mktemp("cacheshared"))
    art = comp.artifact(CompressionConfig(quant=QuantConfig(
        layers={"stages.1.conv1": "int8_dynamic", "stages.1.shortcut.0": "int8", "stem.0": "int8"},
        calibration_samples=32)))
    found = layer_precisions(art.path, comp.layers)
    assert found["stages.1.conv1"] == {"int8_dynamic"} and found["stages.1.shortcut.0"] == {"int8"}
