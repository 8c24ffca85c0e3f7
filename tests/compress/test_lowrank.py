"""Low-rank factorization: exact at full rank, fewer parameters at low rank, layers whose pair would
cost more left whole (and said so), and the factorized model exports, keeps its layer names for
per-layer precision, and runs in onnxruntime."""

import copy

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from autocl.compress.lowrank import LowRankConv2d, LowRankLinear, factorize, factorize_model, lowrank_plan
from autocl.compress.onnx_export import export_onnx, layer_nodes
from autocl.compress.prune import count_ops, count_parameters
from autocl.config import PruneConfig
from autocl.errors import ConfigError


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 32, 3, padding=1)
        self.proj = nn.Conv2d(32, 48, 1, stride=2)
        self.fc = nn.Linear(48, 40)
        self.head = nn.Linear(40, 10)

    def forward(self, x):
        y = self.proj(torch.relu(self.conv(x))).mean(dim=(2, 3))
        return self.head(torch.relu(self.fc(y)))


def _net():
    torch.manual_seed(0)
    return Net().eval()


def test_full_rank_reproduces_linear_and_1x1_conv():
    net, x = _net(), torch.randn(2, 3, 8, 8)
    lin = factorize(net.fc, 40)
    conv = factorize(net.proj, 32)
    assert isinstance(lin, LowRankLinear) and isinstance(conv, LowRankConv2d)
    h = torch.randn(5, 48)
    torch.testing.assert_close(lin(h), net.fc(h), atol=1e-4, rtol=1e-4)
    z = torch.relu(net.conv(x))
    torch.testing.assert_close(conv(z), net.proj(z), atol=1e-4, rtol=1e-4)
    assert conv(z).shape == net.proj(z).shape == (2, 48, 4, 4)


def test_low_rank_has_fewer_parameters_and_macs_and_skips_layers_that_would_cost_more():
    net, x = _net(), torch.randn(1, 3, 8, 8)
    plan = lowrank_plan(net, PruneConfig(rank_ratio=0.25, layer_rank_ratios={"fc": 0.9}), ignored=("head",))
    assert set(plan) == {"proj", "fc"}  # the 3x3 conv is not factorizable, the head is ignored
    assert plan["proj"] == {"rank": 8, "of": 32, "factorized": True}
    assert not plan["fc"]["factorized"] and "left whole" in plan["fc"]["reason"]  # 36 * 88 > 48 * 40
    small = factorize_model(copy.deepcopy(net), plan)
    assert isinstance(small.proj, LowRankConv2d) and isinstance(small.fc, nn.Linear)
    assert count_parameters(small) < count_parameters(net)
    macs_full, _ = count_ops(net, x)
    macs_small, _ = count_ops(small, x)
    assert macs_small < macs_full
    with pytest.raises(ConfigError, match="not a Linear or 1x1"):
        lowrank_plan(net, PruneConfig(layer_rank_ratios={"conv": 0.5}))


def test_factorized_model_exports_keeps_layer_names_and_runs_in_onnxruntime(tmp_path):
    net, x = _net(), torch.randn(2, 3, 8, 8)
    small = factorize_model(copy.deepcopy(net), lowrank_plan(net, PruneConfig(rank_ratio=0.5)))
    path = export_onnx(small, (x,), tmp_path / "lr.onnx")
    nodes = layer_nodes(path, ["conv", "proj", "fc", "head"])
    assert len(nodes["conv"]) == 1 and all(len(nodes[n]) == 2 for n in ("proj", "fc", "head"))
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(out, small(x).detach().numpy(), atol=1e-4)
