import onnx
import torch
from onnx import numpy_helper

from autocl.compress import count_parameters, export_onnx, prune_model
from autocl.config import PruneConfig
from autocl.errors import ConfigError
from autocl.workloads._models import DigitResNet


def _weight_elems(path) -> int:
    return sum(numpy_helper.to_array(t).size for t in onnx.load(str(path)).graph.initializer)


def test_pruning_removes_channels_and_shrinks_the_exported_graph(tmp_path, digits):
    pruned = prune_model(digits.model, digits.example_input, PruneConfig(ratio=0.5), ignored_layers=("fc",))
    assert count_parameters(pruned) < 0.5 * count_parameters(digits.model)
    convs = {n: m for n, m in pruned.named_modules() if isinstance(m, torch.nn.Conv2d)}
    originals = dict(digits.model.named_modules())
    assert all(m.out_channels < originals[n].out_channels for n, m in convs.items())
    # the classifier keeps its 10 outputs and the model still runs
    assert pruned(digits.example_input).shape == (1, 10)
    base = export_onnx(digits.model, digits.example_input, tmp_path / "base.onnx")
    small = export_onnx(pruned, digits.example_input, tmp_path / "pruned.onnx")
    assert _weight_elems(small) < 0.5 * _weight_elems(base)


def test_pruning_leaves_the_teacher_untouched(digits):
    before = count_parameters(digits.model)
    prune_model(digits.model, digits.example_input, PruneConfig(ratio=0.5), ignored_layers=("fc",))
    assert count_parameters(digits.model) == before


def test_channel_counts_are_rounded_for_fast_kernels():
    model = DigitResNet(channels=(32, 64)).eval()
    pruned = prune_model(model, torch.randn(1, 1, 8, 8), PruneConfig(ratio=0.3, round_to=8), ignored_layers=("fc",))
    counts = [m.out_channels for m in pruned.modules() if isinstance(m, torch.nn.Conv2d)]
    assert counts and all(c % 8 == 0 for c in counts)


def test_unknown_ignored_layer_names_the_field_and_suggests(digits):
    try:
        prune_model(digits.model, digits.example_input, PruneConfig(ratio=0.3, ignored_layers=("stages.0.conv9",)))
    except ConfigError as exc:
        assert "prune.ignored_layers" in str(exc) and "stages.0.conv1" in str(exc)
    else:
        raise AssertionError("an unknown layer was accepted")
