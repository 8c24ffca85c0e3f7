import onnx
import pytest
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


# --- models autocl has never seen: depthwise, grouped and residual blocks ----------------------

class MobileBlock(torch.nn.Module):
    """Inverted residual: 1x1 expand, 3x3 depthwise, 1x1 project, identity shortcut."""

    def __init__(self, c: int, expand: int = 2) -> None:
        super().__init__()
        h = c * expand
        self.expand = torch.nn.Conv2d(c, h, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(h)
        self.dw = torch.nn.Conv2d(h, h, 3, padding=1, groups=h, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(h)
        self.project = torch.nn.Conv2d(h, c, 1, bias=False)
        self.bn3 = torch.nn.BatchNorm2d(c)

    def forward(self, x):
        y = torch.relu(self.bn1(self.expand(x)))
        y = torch.relu(self.bn2(self.dw(y)))
        return x + self.bn3(self.project(y))


class MixedNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 32, 3, padding=1)
        self.block1 = MobileBlock(32)
        self.grouped = torch.nn.Conv2d(32, 64, 3, padding=1, groups=4)
        self.block2 = MobileBlock(64)
        self.head = torch.nn.Linear(64, 5)

    def forward(self, x):
        x = self.block1(torch.relu(self.stem(x)))
        x = self.block2(torch.relu(self.grouped(x)))
        return self.head(x.mean(dim=(2, 3)))


@pytest.mark.parametrize("importance,scope", [("l2", "local"), ("l1", "global"), ("taylor", "local")])
def test_depthwise_grouped_residual_model_prunes_without_shape_errors(tmp_path, importance, scope):
    torch.manual_seed(0)
    model = MixedNet().eval()
    x = torch.randn(2, 3, 16, 16)
    loss_fn = (lambda m: torch.nn.functional.cross_entropy(m(x), torch.tensor([0, 1])))
    cfg = PruneConfig(ratio=0.5, importance=importance, scope=scope, round_to=8)
    pruned = prune_model(model, x[:1], cfg, ignored_layers=("head",), loss_fn=loss_fn)
    assert count_parameters(pruned) < 0.8 * count_parameters(model)
    assert pruned(x).shape == (2, 5)
    dw = pruned.block1.dw
    assert dw.groups == dw.in_channels == dw.out_channels == pruned.block1.expand.out_channels
    # the residual add forces block1's output to match the stem's channels
    assert pruned.block1.project.out_channels == pruned.stem.out_channels
    assert pruned.grouped.groups == 4 and pruned.grouped.in_channels % 4 == 0
    path = export_onnx(pruned, x[:1], tmp_path / "mixed.onnx")
    import onnxruntime as ort

    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    assert out.shape == (2, 5)


def test_per_layer_ratios_override_the_global_ratio():
    torch.manual_seed(0)
    model = MixedNet().eval()
    cfg = PruneConfig(ratio=0.0, layer_ratios={"block2.expand": 0.5}, round_to=None)
    pruned = prune_model(model, torch.randn(1, 3, 16, 16), cfg, ignored_layers=("head",))
    assert pruned.block2.expand.out_channels == 64
    assert pruned.stem.out_channels == 32 and pruned.grouped.out_channels == 64


def test_taylor_without_a_loss_is_refused_naming_the_field():
    with pytest.raises(ConfigError, match="prune.importance"):
        prune_model(MixedNet().eval(), torch.randn(1, 3, 16, 16), PruneConfig(ratio=0.3, importance="taylor"))


def test_unstructured_sparsity_zeroes_weights_shrinks_the_deflated_file_not_the_graph(digits, tmp_path_factory,
                                                                                      fast_profile):
    from autocl.compress import Compressor
    from autocl.compress.prune import weight_sparsity
    from autocl.config import CompressionConfig

    comp = Compressor(digits, tmp_path_factory.mktemp("sparse"))
    dense = comp.artifact(CompressionConfig())
    sparse = comp.artifact(CompressionConfig(prune=PruneConfig(unstructured=0.6)))
    assert 0.5 < sparse.student.sparsity < 0.7 and dense.student.sparsity < 0.01
    assert not sparse.student.reused and sparse.student.key != dense.student.key
    assert abs(sparse.size_bytes - dense.size_bytes) < 0.02 * dense.size_bytes  # same dense tensors
    assert sparse.compressed_size_bytes < 0.8 * dense.compressed_size_bytes
    assert weight_sparsity(digits.model) < 0.01  # the teacher is untouched
    from autocl.evaluate import evaluate_artifact

    # the zeros are held while distillation recovers the accuracy
    assert evaluate_artifact(sparse.path, digits, fast_profile) > 0.9
