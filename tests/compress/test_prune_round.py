"""``round_to`` keeps the nearest multiple of channels: the override of torch-pruning's private
``MetaPruner._round_to`` is pinned to the release it was written for, and falls back (with a
warning) to torch-pruning's own round-down on any other release."""

import importlib.metadata

import pytest
import torch
from torch import nn

from autocl.compress import prune as prune_module
from autocl.compress import prune_model
from autocl.config import PruneConfig


def three_convs() -> nn.Module:
    """16, 32 and 40 output channels: one layer at two multiples of 8, two wider ones."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 32, 3), nn.ReLU(), nn.Conv2d(32, 40, 3), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(40, 10)).eval()


def kept_channels(ratio: float) -> list[int]:
    pruned = prune_model(three_convs(), torch.randn(1, 3, 12, 12), PruneConfig(ratio=ratio, round_to=8))
    return [m.out_channels for m in pruned if isinstance(m, nn.Conv2d)]


@pytest.fixture
def fresh_version_check():
    prune_module.aligned_rounding.cache_clear()
    yield
    prune_module.aligned_rounding.cache_clear()


# torch-pruning asks to keep int(channels × (1 - ratio)); the override rounds that to the nearest
# multiple of 8 (Python's round: halves to even), never below 8. E.g. at 0.3: 16 → 11 → 8, 32 → 22 → 24,
# 40 → 28 → 32; at 0.6: 16 → 6 → 8, 32 → 12 → 16, 40 → 16.
@pytest.mark.parametrize(("ratio", "kept"), [
    (0.3, [8, 24, 32]), (0.5, [8, 16, 16]), (0.6, [8, 16, 16]), (0.8, [8, 8, 8])])
def test_the_kept_channel_counts_are_the_nearest_multiples(ratio, kept, fresh_version_check):
    installed = importlib.metadata.version("torch-pruning")
    assert prune_module.aligned_rounding(), (
        f"torch-pruning {installed} is not {prune_module.ROUND_TO_WRITTEN_FOR}, the release the round_to override "
        "was written for: check that MetaPruner._round_to still means the same, then move ROUND_TO_WRITTEN_FOR")
    assert kept_channels(ratio) == kept


def test_another_release_falls_back_to_torch_prunings_round_down_and_says_so(monkeypatch, fresh_version_check):
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "9.9.9")
    with pytest.warns(RuntimeWarning, match=r"torch-pruning 9\.9\.9 is installed.*torch-pruning==1\.6\.1"):
        # torch-pruning's own rounding: 16 → 6 rounds down to 0, which it refuses, so the 16 stay; 32 → 12 → 8
        assert kept_channels(0.6) == [16, 8, 16]
    assert kept_channels(0.8) == [16, 32, 40]  # warned once: 0.8 keeps under 8 of every layer, nothing is pruned
