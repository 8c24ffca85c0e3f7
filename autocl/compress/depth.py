"""Depth pruning: remove whole transformer layers or residual blocks, DistilBERT-style.

The student keeps a subset of the teacher's blocks, with the teacher's weights, and is then
distilled; the blocks it keeps are recorded, so layer-to-layer feature distillation compares each
student block with the teacher block it came from (:func:`feature_map`).

Removable blocks are found on the model itself, on the example inputs:

* a transformer's layer stack: an ``nn.ModuleList`` of two or more modules of one class whose
  first input and first output have the same shape (Hugging Face ``BertEncoder.layer``);
* residual blocks: children of an ``nn.Sequential`` that have an identity shortcut
  (an ``nn.Identity`` child) and keep their input's shape. A block with a projection shortcut
  changes the shape, and removing it would break the next block: it is never removed.

Two criteria choose the blocks removed: ``uniform`` keeps evenly spaced blocks, starting with the
first and the last (6 -> 3 keeps 0, 2, 5; DistilBERT keeps every other layer), ``importance`` removes, one at a time, the block
whose removal raises the workload's loss on training rows the least (measured, greedy).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from autocl.config import PruneConfig
from autocl.errors import ConfigError


@dataclass(frozen=True)
class BlockStack:
    """One container of removable blocks: its name and the indices of the removable children."""

    name: str
    removable: tuple[int, ...]
    size: int


def _first(value):
    return value[0] if isinstance(value, (tuple, list)) else value


def _shapes(model: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> dict[str, tuple]:
    """(input shape, output shape) of every module's first tensor input and output on one call."""
    seen: dict[str, tuple] = {}
    handles = []
    for name, m in model.named_modules():

        def hook(_m, args, kwargs, out, name=name):
            x = args[0] if args else next(iter(kwargs.values()), None)
            y = _first(out)
            if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
                seen.setdefault(name, (tuple(x.shape), tuple(y.shape)))

        handles.append(m.register_forward_hook(hook, with_kwargs=True))
    try:
        with torch.no_grad():
            model.eval()(*example_inputs)
    finally:
        for h in handles:
            h.remove()
    return seen


def block_stacks(model: nn.Module, example_inputs) -> list[BlockStack]:
    """The containers of ``model`` holding blocks that can be removed without changing any shape."""
    inputs = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    shapes = _shapes(model, inputs)
    stacks = []
    for name, m in model.named_modules():
        if not isinstance(m, (nn.ModuleList, nn.Sequential)) or len(m) < 2:
            continue
        children = list(m)
        same_class = isinstance(m, nn.ModuleList) and len({type(c) for c in children}) == 1
        removable = []
        for i, child in enumerate(children):
            io = shapes.get(f"{name}.{i}" if name else str(i))
            if io is None or io[0] != io[1]:
                continue
            identity = any(isinstance(c, nn.Identity) for c in child.children())
            if same_class or identity:
                removable.append(i)
        if removable:
            stacks.append(BlockStack(name, tuple(removable), len(children)))
    return stacks


def blocks_to_remove(cfg: PruneConfig, n: int) -> int:
    """How many of ``n`` removable blocks ``cfg.depth`` removes: a fraction below 1, a count from 1."""
    return round(cfg.depth * n) if cfg.depth < 1 else int(cfg.depth)


def _uniform(candidates: list[int], drop: int) -> list[int]:
    """The ``drop`` candidates removed when evenly spaced ones are kept, the first and the last
    among them (6 -> 4 keeps 0, 2, 3, 5). The last block is kept: on MiniLM, removing it alone
    left a cosine of 0.44 to the original embeddings, removing any middle one 0.92-0.93."""
    n, keep_n = len(candidates), len(candidates) - drop
    if keep_n <= 0:
        return list(candidates)
    kept = {candidates[0]} if keep_n == 1 else {candidates[round(i * (n - 1) / (keep_n - 1))] for i in range(keep_n)}
    return [c for c in candidates if c not in kept]


def _without(model: nn.Module, stack: BlockStack, removed: set[int]) -> nn.Module:
    out = copy.deepcopy(model)
    container = cast("nn.Sequential | nn.ModuleList", out.get_submodule(stack.name) if stack.name else out)
    kept = [c for i, c in enumerate(container) if i not in removed]
    new = type(container)(*kept) if isinstance(container, nn.Sequential) else nn.ModuleList(kept)
    if stack.name:
        parent_name, _, attr = stack.name.rpartition(".")
        setattr(out.get_submodule(parent_name) if parent_name else out, attr, new)
    else:  # pragma: no cover - a bare Sequential model: its children are removed in place
        out = new
    config = getattr(getattr(out, "bert", out), "config", None) or getattr(out, "config", None)
    if config is not None and hasattr(config, "num_hidden_layers") and isinstance(new, nn.ModuleList):
        config.num_hidden_layers = len(new)  # Hugging Face sizes head masks and caches by it
    return out


@dataclass(frozen=True)
class DepthResult:
    model: nn.Module
    kept: dict[str, list[int]]
    """Per container, the teacher indices of the blocks the student kept, in order."""
    removed: dict[str, list[int]]


def prune_depth(
    model: nn.Module, example_inputs, cfg: PruneConfig, loss_fn: Callable[[nn.Module], torch.Tensor] | None = None
) -> DepthResult:
    """A copy of ``model`` without ``cfg.depth`` of its removable blocks (see the module docstring).
    With several containers (a CNN's stages), the count is spread over all their removable blocks."""
    stacks = block_stacks(model, example_inputs)
    candidates = [(s, i) for s in stacks for i in s.removable]
    if not candidates:
        raise ConfigError(
            "the model has no removable blocks (no layer stack in an nn.ModuleList and no "
            "residual block with an identity shortcut): set prune.depth to 0",
            field="prune.depth",
        )
    drop = blocks_to_remove(cfg, len(candidates))
    most = sum(len(s.removable) - (len(s.removable) == s.size) for s in stacks)
    if drop > most:
        raise ConfigError(
            f"prune.depth {cfg.depth:g} would remove {drop} blocks; this model has {most} that can go "
            "(a layer stack keeps at least one layer)",
            field="prune.depth",
        )
    if cfg.depth_criterion == "importance" and loss_fn is not None:
        chosen = _by_importance(model, candidates, drop, loss_fn)
    else:
        chosen = []
        for s in stacks:  # spread over the containers in proportion to their removable blocks
            share = round(drop * len(s.removable) / len(candidates)) if s is not stacks[-1] else drop - len(chosen)
            share = min(share, len(s.removable) - (len(s.removable) == s.size))
            chosen += [(s, i) for i in _uniform(list(s.removable), share)]
    student = model
    removed = {s.name: sorted(i for t, i in chosen if t is s) for s in stacks}
    for s in stacks:
        if removed[s.name]:
            student = _without(student, s, set(removed[s.name]))
    if student is model:
        student = copy.deepcopy(model)
    kept = {s.name: [i for i in range(s.size) if i not in removed[s.name]] for s in stacks}
    return DepthResult(student.eval(), kept, {k: v for k, v in removed.items() if v})


def check_depth(model: nn.Module, example_inputs, most_removed: float, *, file: str | None = None) -> None:
    """Refuse, before a search starts, a ``prune.depth`` the model cannot take: no removable block
    at all, or a count larger than the blocks that can go (``most_removed``: the space's largest value)."""
    if most_removed <= 0:
        return
    stacks = block_stacks(model, example_inputs)
    can_go = sum(len(s.removable) - (len(s.removable) == s.size) for s in stacks)
    if not stacks:
        raise ConfigError(
            "the model has no removable blocks (no layer stack in an nn.ModuleList and no residual "
            "block with an identity shortcut): set prune.depth to 0",
            file=file,
            field="prune.depth",
        )
    if most_removed >= 1 and int(most_removed) > can_go:
        raise ConfigError(
            f"{most_removed:g} blocks cannot be removed: this model has {can_go} that can go "
            "(a layer stack keeps at least one layer)",
            file=file,
            field="prune.depth",
        )


def _by_importance(model, candidates, drop: int, loss_fn) -> list:
    """Greedy: remove the block whose removal raises ``loss_fn`` the least, then the next, ..."""
    chosen: list = []
    for _ in range(drop):
        best = None
        for c in candidates:
            if c in chosen:
                continue
            trial = model
            for s in {t for t, _ in [*chosen, c]}:
                trial = _without(trial, s, {i for t, i in [*chosen, c] if t is s})
            with torch.no_grad():
                loss = float(loss_fn(trial.eval()))
            if best is None or loss < best[0]:
                best = (loss, c)
        assert best is not None  # drop <= len(candidates): a candidate is left each round
        chosen.append(best[1])
    return chosen


def feature_map(kept: dict[str, list[int]], teacher_layers: tuple[str, ...]) -> dict[str, str]:
    """Student module name -> the teacher module it came from, for each of ``teacher_layers`` that
    survived depth pruning: ``bert.encoder.layer.2`` of a student that kept layers 0, 2, 4 of 6 is
    the teacher's ``bert.encoder.layer.4``. Removed blocks (and modules inside them) are left out."""
    out: dict[str, str] = {}
    for name in teacher_layers:
        student_name: str | None = name
        for stack, indices in kept.items():
            prefix = f"{stack}." if stack else ""
            if not name.startswith(prefix):
                continue
            head, _, rest = name[len(prefix) :].partition(".")
            if not head.isdigit():
                continue
            if int(head) not in indices:
                student_name = None
            else:
                student_name = f"{prefix}{indices.index(int(head))}" + (f".{rest}" if rest else "")
            break
        if student_name is not None:
            out[student_name] = name
    return out


__all__ = ["BlockStack", "DepthResult", "block_stacks", "blocks_to_remove", "check_depth", "feature_map", "prune_depth"]
