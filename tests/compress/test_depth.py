"""Depth pruning: whole blocks go, the student keeps the teacher's weights for the rest, feature
distillation pairs each student block with the teacher block it came from, and the exported graph
really has fewer layers and still runs in onnxruntime."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from autocl.compress import Compressor
from autocl.compress.depth import block_stacks, check_depth, feature_map, prune_depth
from autocl.compress.onnx_export import export_onnx
from autocl.config import CompressionConfig, DistillConfig, PruneConfig, QuantConfig
from autocl.errors import ConfigError


def tiny_bert(layers: int = 4):
    from transformers import BertConfig, BertModel

    from autocl.workloads._minilm import SentenceEncoder

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=16, attn_implementation="eager")
    return SentenceEncoder(BertModel(cfg, add_pooling_layer=False)).eval()


def _bert_inputs():
    ids = torch.randint(0, 64, (2, 8), generator=torch.Generator().manual_seed(0))
    return ids, torch.ones_like(ids)


def _ops(path, op: str) -> int:
    return sum(n.op_type == op for n in onnx.load(str(path)).graph.node)


def test_a_transformer_keeps_evenly_spaced_layers_with_the_teachers_weights(tmp_path):
    model, inputs = tiny_bert(4), _bert_inputs()
    assert [(s.name, s.removable) for s in block_stacks(model, inputs)] == [("bert.encoder.layer", (0, 1, 2, 3))]
    out = prune_depth(model, inputs, PruneConfig(depth=0.5))
    assert out.kept == {"bert.encoder.layer": [0, 3]} and out.removed == {"bert.encoder.layer": [1, 2]}
    student = out.model
    assert len(student.bert.encoder.layer) == 2 and len(model.bert.encoder.layer) == 4  # the teacher is untouched
    assert torch.equal(student.bert.encoder.layer[1].output.dense.weight, model.bert.encoder.layer[3].output.dense.weight)
    assert feature_map(out.kept, tuple(f"bert.encoder.layer.{i}" for i in range(4))) == {
        "bert.encoder.layer.0": "bert.encoder.layer.0", "bert.encoder.layer.1": "bert.encoder.layer.3"}
    full = export_onnx(model, inputs, tmp_path / "t.onnx", input_names=("input_ids", "attention_mask"))
    small = export_onnx(student, inputs, tmp_path / "s.onnx", input_names=("input_ids", "attention_mask"))
    assert _ops(small, "MatMul") < _ops(full, "MatMul") and len(onnx.load(str(small)).graph.node) < len(onnx.load(str(full)).graph.node)
    sess = ort.InferenceSession(str(small), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input_ids": inputs[0].numpy(), "attention_mask": inputs[1].numpy()})[0]
    np.testing.assert_allclose(got, student(*inputs).detach().numpy(), atol=1e-4)


def test_importance_removes_the_block_whose_removal_costs_least():
    model, inputs = tiny_bert(3), _bert_inputs()
    layer = model.bert.encoder.layer[1]
    with torch.no_grad():  # make layer 1 (nearly) a no-op: both residual branches add zero before LayerNorm
        for p in (*layer.attention.output.dense.parameters(), *layer.output.dense.parameters()):
            p.zero_()
    target = model(*inputs).detach()

    def loss(m):
        return (m(*inputs) - target).pow(2).sum()

    out = prune_depth(model, inputs, PruneConfig(depth=1, depth_criterion="importance"), loss_fn=loss)
    assert out.removed == {"bert.encoder.layer": [1]}


def test_a_model_without_removable_blocks_is_refused():
    plain = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    with pytest.raises(ConfigError, match="no removable blocks"):
        prune_depth(plain, torch.zeros(1, 1, 8, 8), PruneConfig(depth=1))
    with pytest.raises(ConfigError, match="keeps at least one layer"):
        prune_depth(tiny_bert(2), _bert_inputs(), PruneConfig(depth=2))
    with pytest.raises(ConfigError, match="would remove 3 blocks; this model has 1"):
        prune_depth(tiny_bert(2), _bert_inputs(), PruneConfig(depth=3))
    with pytest.raises(ConfigError, match="space.yaml.*no removable blocks"):  # before a search starts
        check_depth(plain, torch.zeros(1, 1, 8, 8), 1, file="space.yaml")
    with pytest.raises(ConfigError, match="this model has 1 that can go"):
        check_depth(tiny_bert(2), _bert_inputs(), 2)
    check_depth(tiny_bert(2), _bert_inputs(), 0.5)
    check_depth(plain, torch.zeros(1, 1, 8, 8), 0)


def test_a_residual_cnn_loses_its_identity_block_and_distills_with_mapped_features(digits, tmp_path):
    comp = Compressor(digits, tmp_path)
    cfg = CompressionConfig(prune=PruneConfig(depth=1),
                            distill=DistillConfig(steps=3, batch_size=32, feature_weight=1.0))
    student = comp.student(cfg)
    assert student.structure["depth"]["removed"] == {"stages": [0]}  # only block with an identity shortcut
    assert student.achieved["macs"] < 1.0
    assert _ops(student.onnx_path, "Conv") < _ops(comp.baseline(), "Conv")
    x = digits.validation[0][:4]
    out = ort.InferenceSession(str(student.onnx_path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert out.shape == (4, 10) and np.isfinite(out).all()
    assert comp.student_key(cfg) != comp.student_key(CompressionConfig(distill=cfg.distill))
    assert comp.student(cfg).reused and comp.student(cfg).structure == student.structure
    q = cfg.model_copy(update={"quant": QuantConfig(default="int8", calibration_samples=16)})
    art = comp.artifact(q)  # the teacher's layer names of the removed block find no node: quantized all the same
    assert art.details()["structure"]["depth"]["kept"] == {"stages": [1]}
    sess = ort.InferenceSession(str(art.path), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"input": x})[0].shape == (4, 10)
    assert any(n.op_type == "QuantizeLinear" for n in onnx.load(str(art.path)).graph.node)


class _Stack(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(8, 8) for _ in range(3)])

    def forward(self, x):
        for b in self.blocks:
            x = x + torch.tanh(b(x))
        return x


def test_feature_distillation_pulls_each_student_block_towards_the_teacher_block_it_came_from():
    from autocl.compress.distill import FeatureTaps, TeacherFeatureCache, distill

    torch.manual_seed(0)
    teacher, x = _Stack().eval(), torch.randn(64, 8)
    out = prune_depth(teacher, (x[:1],), PruneConfig(depth=1))
    pairs = feature_map(out.kept, ("blocks.0", "blocks.1", "blocks.2"))
    assert out.kept == {"blocks": [0, 2]} and pairs == {"blocks.0": "blocks.0", "blocks.1": "blocks.2"}

    def gap(student):
        taps, ttaps = FeatureTaps(student, ("blocks.1",)), FeatureTaps(teacher, ("blocks.2",))
        with torch.no_grad():
            student.eval()(x), teacher(x)
        taps.close(), ttaps.close()
        return float((taps.values["blocks.1"] - ttaps.values["blocks.2"]).pow(2).mean())

    before = gap(out.model)
    cfg = DistillConfig(steps=40, lr=1e-2, batch_size=16, feature_weight=1.0)
    distill(out.model, (x,), torch.zeros(64), torch.zeros(64, 8), cfg, loss_fn=lambda s, *_: s.sum() * 0,
            teacher_features=TeacherFeatureCache(teacher, ("blocks.0", "blocks.1", "blocks.2")), feature_map=pairs)
    assert gap(out.model) < 0.5 * before
