"""The `vit` workload's model: autocl's transformer passes find its heads, FFN neurons and blocks,
and the compressed student exports to ONNX and quantizes per layer. A tiny untrained ViT on a few
digits keeps it fast; the trained teacher is checked in one slow test."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from autocl.compress import Compressor
from autocl.compress.depth import block_stacks
from autocl.compress.prune import attention_modules, prune_model
from autocl.config import CompressionConfig, DistillConfig, PruneConfig, QuantConfig
from autocl.workloads import Workload
from autocl.workloads._vit import VisionTransformer


def tiny_vit_workload() -> Workload:
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    data = load_digits()
    x = np.kron(data.images[:96].astype(np.float32) / 16.0, np.ones((2, 2), np.float32))[:, None]  # 16x16
    y = data.target[:96].astype(np.int64)
    model = VisionTransformer(image_size=16, patch=4, dim=32, depth=3, heads=4, mlp=64)
    return Workload(
        name="tiny-vit",
        model=model,
        example_input=torch.from_numpy(x[:1]),
        train=(x[:64], y[:64]),
        validation=(x[64:], y[64:]),
        feature_layers=("layers.0", "layers.1", "layers.2"),
    )


def _ops(path) -> list[str]:
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def test_heads_ffn_neurons_and_blocks_of_the_vit_are_found_and_pruned():
    w = tiny_vit_workload()
    assert sorted(attention_modules(w.model)) == [f"layers.{i}.attention" for i in range(3)]
    assert [(s.name, s.removable) for s in block_stacks(w.model, w.example_inputs())] == [("layers", (0, 1, 2))]
    student = prune_model(w.model, w.example_inputs(), PruneConfig(ratio=0.5, head_ratio=0.5, round_to=8))
    block = student.layers[0]
    assert block.attention.num_attention_heads == 2 and block.attention.query.out_features == 16
    assert block.intermediate.out_features == 32 and block.output.in_features == 32
    # the residual stream (patch embedding, projections, classifier input) keeps its width
    assert student.patch_embed.out_channels == 32 and block.attention_output.out_features == 32
    assert student.head.out_features == 10 and student(*w.example_inputs()).shape == (1, 10)


def test_a_pruned_distilled_vit_exports_and_quantizes_per_layer(tmp_path):
    w = tiny_vit_workload()
    comp = Compressor(w, tmp_path)
    cfg = CompressionConfig(
        prune=PruneConfig(ratio=0.25, head_ratio=0.5, depth=1, depth_criterion="uniform", round_to=8),
        distill=DistillConfig(steps=2, batch_size=16),
        quant=QuantConfig(default="int8_dynamic", layers={"head": "fp32"}, fuse_first=True),
    )
    art = comp.artifact(cfg)
    ops = _ops(art.path)
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    assert sum(op == "Softmax" for op in _ops(comp.baseline())) == 3 and sum(op == "Softmax" for op in ops) == 2
    sess = ort.InferenceSession(str(art.path), providers=["CPUExecutionProvider"])
    out = sess.run(None, w.feed(w.validation[0][:4]))[0]
    assert out.shape == (4, 10) and np.isfinite(out).all()


def test_vit_is_a_builtin_workload():
    from autocl.workloads import BUILTIN

    assert BUILTIN["vit"] == "autocl.workloads._vit:vit"


@pytest.mark.slow
def test_the_trained_vit_teacher_classifies_mnist():
    from autocl.compress import Compressor
    from autocl.evaluate import evaluate_artifact
    from autocl.hardware import profile_from_dict
    from autocl.runtime import cache_dir
    from autocl.workloads import load_workload

    w = load_workload("vit")
    assert len(w.layer_names()) == 1 + 6 * 4 + 1 and w.teacher_file is not None and w.teacher_file.is_file()
    profile = profile_from_dict({"name": "t", "threads": 1, "batch_size": 8})
    assert evaluate_artifact(Compressor(w, cache_dir()).baseline(), w, profile) > 0.88  # 0.908 here
