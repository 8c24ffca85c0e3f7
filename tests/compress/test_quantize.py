import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from autocl.compress import Compressor, layer_nodes, quantize_model, quantized_nodes
from autocl.config import CompressionConfig, PruneConfig, QuantConfig
from autocl.errors import ConfigError
from autocl.evaluate import evaluate_artifact, predict


@pytest.fixture(scope="module")
def compressor(digits, tmp_path_factory):
    return Compressor(digits, tmp_path_factory.mktemp("cache"))


def test_int8_layers_are_qdq_int8_and_fp32_layers_are_not(compressor, digits):
    layers = compressor.layers
    chosen = {layers[0]: "int8", layers[2]: "int8", layers[-1]: "int8"}
    cfg = CompressionConfig(quant=QuantConfig(default="fp32", layers=chosen, calibration_samples=32))
    art = compressor.artifact(cfg)
    nodes = layer_nodes(compressor.student_graph(art.student, cfg), layers)
    q = quantized_nodes(art.path)
    for layer in layers:
        assert nodes[layer], f"layer {layer} has no node in the graph"
        if layer in chosen:
            assert set(nodes[layer]) <= q, f"{layer} should run with int8 weights"
        else:
            assert not set(nodes[layer]) & q, f"{layer} should stay fp32"
    graph = onnx.load(str(art.path)).graph
    assert any(n.op_type == "QuantizeLinear" for n in graph.node)


def test_all_fp32_is_a_copy_without_qdq(compressor):
    art = compressor.artifact(CompressionConfig(quant=QuantConfig(default="fp32")))
    ops = {n.op_type for n in onnx.load(str(art.path)).graph.node}
    assert "QuantizeLinear" not in ops and "DequantizeLinear" not in ops


def test_int8_model_is_smaller_and_keeps_accuracy(compressor, digits, fast_profile):
    fp32 = compressor.artifact(CompressionConfig(quant=QuantConfig(default="fp32")))
    int8 = compressor.artifact(CompressionConfig(quant=QuantConfig(default="int8", calibration_samples=64)))
    assert int8.size_bytes < 0.5 * fp32.size_bytes
    acc32 = evaluate_artifact(fp32.path, digits, fast_profile)
    acc8 = evaluate_artifact(int8.path, digits, fast_profile)
    assert acc32 > 0.9 and acc8 > acc32 - 0.05


def test_unknown_layer_in_quant_config_is_refused(compressor, tmp_path):
    art = compressor.artifact(CompressionConfig())
    graph = compressor.student_graph(art.student, CompressionConfig())
    cfg = QuantConfig(layers={"no.such.layer": "int8"})
    with pytest.raises(ConfigError, match="no.such.layer"):
        quantize_model(graph, tmp_path / "q.onnx", cfg,
                       layer_nodes(graph, compressor.layers), [{"input": np.zeros((4, 1, 8, 8), np.float32)}])


def test_the_metric_is_read_from_the_artifact_not_the_torch_model(compressor, digits, fast_profile, tmp_path):
    art = compressor.artifact(CompressionConfig())
    assert evaluate_artifact(art.path, digits, fast_profile) > 0.9
    model = onnx.load(str(art.path))
    for init in model.graph.initializer:  # zero the classifier inside the ONNX file only
        if init.name.startswith("fc."):
            init.CopyFrom(numpy_helper.from_array(np.zeros_like(numpy_helper.to_array(init)), init.name))
    broken = tmp_path / "broken.onnx"
    onnx.save(model, str(broken))
    assert np.allclose(predict(broken, digits.validation[0][:8], fast_profile), 0.0)
    assert evaluate_artifact(broken, digits, fast_profile) < 0.2


def test_students_are_cached_by_prune_and_distill_knobs_only(compressor):
    cfg = CompressionConfig(prune=PruneConfig(ratio=0.5))
    first = compressor.student(cfg)
    other_bits = cfg.model_copy(update={"quant": QuantConfig(default="int8", calibration_samples=16)})
    again = compressor.student(other_bits)
    assert again.reused and again.key == first.key


def test_int8_glue_takes_residual_joins_not_biases():
    """Ops between int8 layers are quantized with them, so no fp32 island costs a dequantize and a
    quantize; a Linear's bias Add (a constant operand) is left alone."""
    from onnx import TensorProto, helper

    from autocl.compress.quantize import int8_glue

    w = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"], name="conv1"),
        helper.make_node("Relu", ["a"], ["b"], name="relu"),
        helper.make_node("Conv", ["b", "w"], ["c"], name="conv2"),
        helper.make_node("Add", ["c", "b"], ["d"], name="residual"),
        helper.make_node("Add", ["d", "w"], ["e"], name="bias"),
        helper.make_node("Relu", ["x"], ["f"], name="fp32_relu"),
        helper.make_node("Add", ["e", "f"], ["g"], name="mixed"),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("g", TensorProto.FLOAT, [1])], initializer=[w])
    assert int8_glue(helper.make_model(graph), ["conv1", "conv2"]) == ["relu", "residual"]


def test_the_shipped_size_is_computed_once_per_artifact_content(compressor):
    from autocl.compress.size import compressed_size

    cfg = CompressionConfig(quant=QuantConfig(default="int8", calibration_samples=32))
    art = compressor.artifact(cfg)
    record = art.path.with_name(art.path.name + ".size")
    assert art.compressed_size_bytes == compressed_size(art.path)
    assert record.read_text().split() == [art.sha256, str(art.compressed_size_bytes)]
    record.write_text(f"{'0' * 64} 1")  # a record of other content is not believed
    assert compressor.artifact(cfg).compressed_size_bytes == compressed_size(art.path)
