"""Pruning does what it says: output layers keep their outputs, ratios are monotone, and what was
achieved is measured, not assumed."""

import pytest
import torch
from torch import nn

from autocl.compress import count_parameters, prune_model
from autocl.compress.prune import achieved_fractions, output_layers
from autocl.config import PruneConfig
from autocl.workloads._models import DigitResNet


class UserVGG(nn.Module):
    """A user's VGG-style CNN: three conv blocks, then a 2048-256-10 classifier, names unlisted."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(2048, 256), nn.ReLU(), nn.Linear(256, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


def test_the_layers_that_produce_the_outputs_are_found_by_the_graph():
    assert output_layers(UserVGG().eval(), torch.randn(1, 3, 32, 32)) == ["classifier.3"]
    assert output_layers(DigitResNet().eval(), torch.randn(1, 1, 28, 28)) == ["fc"]


@pytest.mark.parametrize("ratio", [0.1, 0.2, 0.5, 0.8])
def test_an_unlisted_classifier_head_keeps_its_ten_classes(ratio):
    model = UserVGG().eval()
    x = torch.randn(2, 3, 32, 32)
    pruned = prune_model(model, x[:1], PruneConfig(ratio=ratio, round_to=8))  # no ignored_layers anywhere
    assert pruned(x).shape == (2, 10)
    assert pruned.classifier[3].out_features == 10
    assert count_parameters(pruned) < count_parameters(model)


def test_larger_ratios_never_keep_more_and_high_ratios_still_prune():
    model = DigitResNet(channels=(16, 32)).eval()
    x = torch.randn(1, 1, 8, 8)
    kept = [achieved_fractions(model, prune_model(model, x, PruneConfig(ratio=r, round_to=8)), x)["params"]
            for r in (0.2, 0.4, 0.6, 0.8)]
    assert all(a >= b for a, b in zip(kept, kept[1:])), kept
    assert kept[-1] < 0.6  # torch-pruning's round-down kept all channels at 0.8 on 16-channel layers


def test_achieved_fractions_say_when_nothing_was_removed():
    model = DigitResNet(channels=(16, 32)).eval()
    x = torch.randn(1, 1, 8, 8)
    same = achieved_fractions(model, prune_model(model, x, PruneConfig(ratio=0.05, round_to=8)), x)
    assert same == {"params": 1.0, "macs": 1.0}
    half = achieved_fractions(model, prune_model(model, x, PruneConfig(ratio=0.5, round_to=8)), x)
    assert 0.15 < half["macs"] < 0.5 and 0.15 < half["params"] < 0.5
