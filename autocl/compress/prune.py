"""Structured channel pruning that physically removes filters and everything that depends on them.

torch-pruning's dependency graph groups coupled channels (a conv's filters, the batch norm after it,
the next layer's input channels, both sides of a residual add), so the pruned model is a smaller
dense model: its exported graph has smaller weight tensors, which is what makes it faster.
"""

from __future__ import annotations

import copy
import difflib

import torch
import torch_pruning as tp
from torch import nn

from autocl.config import PruneConfig
from autocl.errors import ConfigError


def resolve_layers(model: nn.Module, names: tuple[str, ...] | list[str], *, field: str) -> list[nn.Module]:
    """Map module names to modules; an unknown name is an error that suggests close matches."""
    modules = dict(model.named_modules())
    found = []
    for name in names:
        if name not in modules:
            close = difflib.get_close_matches(name, [n for n in modules if n], n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ConfigError(f"unknown layer {name!r} (run 'autocl layers' to list them){hint}", field=field)
        found.append(modules[name])
    return found


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def prune_model(model: nn.Module, example_inputs: torch.Tensor | tuple[torch.Tensor, ...], cfg: PruneConfig,
                ignored_layers: tuple[str, ...] = ()) -> nn.Module:
    """Return a pruned copy of ``model``; ``model`` itself is left untouched.

    ``ignored_layers`` (the workload's, e.g. the classifier) and ``cfg.ignored_layers`` keep their
    output channels.
    """
    student = copy.deepcopy(model).eval()
    if cfg.ratio <= 0.0:
        return student
    keep = resolve_layers(student, tuple(ignored_layers) + tuple(cfg.ignored_layers), field="prune.ignored_layers")
    importance = tp.importance.GroupMagnitudeImportance(p=1 if cfg.importance == "l1" else 2)
    pruner = tp.pruner.MetaPruner(
        student, example_inputs, importance=importance, pruning_ratio=cfg.ratio, ignored_layers=keep,
        round_to=cfg.round_to,
    )
    with torch.no_grad():
        pruner.step()
    return student
