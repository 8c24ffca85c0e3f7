"""Embedding tables are layers with a precision: fp32, or 8-bit rows dequantized after the lookup."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from autocl.compress import export_onnx, layer_nodes, quantize_model
from autocl.compress.quantize import layer_precisions
from autocl.compress.size import compressed_size
from autocl.compress.support import unsupported_reason
from autocl.config import QuantConfig
from autocl.errors import ConfigError


class TinyEncoder(nn.Module):
    """Token and position tables feeding a Linear, as a transformer's embeddings do."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens = nn.Embedding(500, 64)
        self.positions = nn.Embedding(16, 64)
        self.proj = nn.Linear(64, 32)

    def forward(self, ids):
        pos = torch.arange(ids.shape[1]).unsqueeze(0)
        return self.proj(self.tokens(ids) + self.positions(pos))


LAYERS = ["tokens", "positions", "proj"]


@pytest.fixture(scope="module")
def encoder_onnx(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("emb") / "enc.onnx"
    return export_onnx(TinyEncoder().eval(), (torch.randint(0, 500, (2, 16)),), path)


def _ids():
    return {"input": np.random.default_rng(0).integers(0, 500, (4, 16)).astype(np.int64)}


def _run(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, _ids())[0]


def test_each_embedding_table_maps_to_its_lookup_node(encoder_onnx):
    nodes = layer_nodes(encoder_onnx, LAYERS)
    ops = {n.name: n.op_type for n in onnx.load(str(encoder_onnx)).graph.node}
    assert [ops[n] for n in nodes["tokens"]] == ["Gather"]
    assert [ops[n] for n in nodes["positions"]] == ["Gather"]
    assert [ops[n] for n in nodes["proj"]] == ["MatMul"]


def test_an_int8_table_is_stored_in_8_bits_only_on_its_layer(encoder_onnx, tmp_path):
    cfg = QuantConfig(layers={"tokens": "int8_dynamic"})
    out = quantize_model(encoder_onnx, tmp_path / "q.onnx", cfg, layer_nodes(encoder_onnx, LAYERS), [])
    assert layer_precisions(out, LAYERS) == {"tokens": {"int8_dynamic"}, "positions": {"fp32"}, "proj": {"fp32"}}
    model = onnx.load(str(out))
    low = {t.name for t in model.graph.initializer if t.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)}
    gathers = [n for n in model.graph.node if n.op_type == "Gather" and n.input[0] in low]
    assert len(gathers) == 1  # the token table, read in 8 bits
    ref, got = _run(encoder_onnx), _run(out)
    assert np.abs(got - ref).max() < 0.05 * np.abs(ref).max()  # close, not wrecked
    assert out.stat().st_size < 0.5 * encoder_onnx.stat().st_size  # the table was most of the file
    assert compressed_size(out) < compressed_size(encoder_onnx)


def test_a_table_is_refused_static_int8_and_int4_with_the_reason(encoder_onnx, tmp_path):
    for precision in ("int8", "int4"):
        why = unsupported_reason("Gather", precision, "CPUExecutionProvider")
        assert why and "weight-only" in why
        with pytest.raises(ConfigError, match="weight-only"):
            quantize_model(
                encoder_onnx,
                tmp_path / "q.onnx",
                QuantConfig(layers={"tokens": precision}),
                layer_nodes(encoder_onnx, LAYERS),
                [],
            )
    assert unsupported_reason("Gather", "int8_dynamic", "CPUExecutionProvider") is None


def test_fusing_first_keeps_the_table_lookup_quantizable(encoder_onnx, tmp_path):
    cfg = QuantConfig(default="int8_dynamic", fuse_first=True)
    out = quantize_model(encoder_onnx, tmp_path / "q.onnx", cfg, layer_nodes(encoder_onnx, LAYERS), [])
    assert layer_precisions(out, LAYERS) == {name: {"int8_dynamic"} for name in LAYERS}


def test_a_model_wide_default_a_table_cannot_take_leaves_the_table_fp32(encoder_onnx, tmp_path):
    # default int8 means every layer that can be int8; a named table is still refused above
    cfg = QuantConfig(default="int8", calibration_samples=4)
    feeds = [_ids() for _ in range(2)]
    out = quantize_model(encoder_onnx, tmp_path / "q.onnx", cfg, layer_nodes(encoder_onnx, LAYERS), feeds)
    assert layer_precisions(out, LAYERS) == {"tokens": {"fp32"}, "positions": {"fp32"}, "proj": {"int8"}}
