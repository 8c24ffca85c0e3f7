"""Structured pruning that physically removes channels, neurons and attention heads, and
unstructured magnitude sparsity reported for what it is.

torch-pruning's dependency graph groups coupled channels (a conv's filters, the batch norm after it,
the next layer's input channels, both sides of a residual add, a depthwise conv's channels with the
conv feeding it), so the pruned model is a smaller dense model: its exported graph has smaller weight
tensors, which is what makes it faster.

Transformers (attention modules with ``query``/``key``/``value`` Linear children and a
``num_attention_heads`` attribute, as in Hugging Face BERT-style models) are pruned by whole
attention heads (head size kept) and FFN neurons; the residual stream's width is never pruned, since
every layer, LayerNorm and the embeddings share it. After pruning, each attention module's head
count bookkeeping is updated, so forward and export see the new shapes.
"""

from __future__ import annotations

import copy
import difflib
import functools
import importlib.metadata
import warnings
from collections.abc import Callable
from typing import cast

import torch
import torch_pruning as tp
from torch import nn
from torch.autograd.graph import Node

from autocl.config import PruneConfig
from autocl.errors import ConfigError

LossFn = Callable[[nn.Module], torch.Tensor]
"""``loss_fn(model) -> loss`` on a batch of training data: Taylor importance backpropagates it."""


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
    """The number of parameters of ``model``.

    Args:
        model: A PyTorch module.

    Returns:
        The total element count of its parameters.
    """
    return sum(p.numel() for p in model.parameters())


def attention_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Multi-head attention modules in the Hugging Face layout: ``query``, ``key``, ``value`` Linear
    children and a ``num_attention_heads`` attribute."""
    return {
        name: m
        for name, m in model.named_modules()
        if hasattr(m, "num_attention_heads")
        and all(isinstance(getattr(m, k, None), nn.Linear) for k in ("query", "key", "value"))
    }


def residual_width_layers(model: nn.Module, attention: dict[str, nn.Module]) -> list[nn.Module]:
    """The layers that write a transformer's residual stream (outputs as wide as the attention's
    input) and its embeddings: pruning them would narrow every layer at once, so they are kept."""
    if not attention:
        return []
    width = cast(nn.Linear, next(iter(attention.values())).query).in_features
    qkv = {id(getattr(a, k)) for a in attention.values() for k in ("query", "key", "value")}
    keep: list[nn.Module] = [m for m in model.modules() if isinstance(m, nn.Embedding)]
    keep += [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == width and id(m) not in qkv]
    return keep


def output_layers(model: nn.Module, example_inputs: torch.Tensor | tuple[torch.Tensor, ...]) -> list[str]:
    """Names of the Conv/Linear layers whose outputs reach the model's outputs with no other Conv or
    Linear in between (a classifier head, the last projection of an embedding model). Pruning their
    output channels would change the model's output shape (a 10-class head would become 8-class),
    so they are never pruned on that dimension, whether or not the workload lists them.

    Found by walking the autograd graph back from every output tensor until a layer's own output
    node is reached: it works on models autocl has never seen."""
    inputs = example_inputs if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    nodes: dict[object, str] = {}
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):

            def hook(_m, _i, out, name=name):
                if isinstance(out, torch.Tensor) and out.grad_fn is not None:
                    nodes[out.grad_fn] = name

            hooks.append(m.register_forward_hook(hook))
    try:
        with torch.enable_grad():
            out = model.eval()(*inputs)
    finally:
        for h in hooks:
            h.remove()
    roots: list[Node | None] = [t.grad_fn for t in _tensors(out) if t.grad_fn is not None]
    found: list[str] = []
    seen: set[int] = set()
    while roots:
        node = roots.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if node in nodes:
            if nodes[node] not in found:
                found.append(nodes[node])
            continue
        roots.extend(fn for fn, _ in node.next_functions)
    return found


def _tensors(out) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors(o)]
    return [t for t in vars(out).values() if isinstance(t, torch.Tensor)] if hasattr(out, "__dict__") else []


def prune_model(
    model: nn.Module,
    example_inputs: torch.Tensor | tuple[torch.Tensor, ...],
    cfg: PruneConfig,
    ignored_layers: tuple[str, ...] = (),
    *,
    loss_fn: LossFn | None = None,
) -> nn.Module:
    """Return a pruned copy of ``model``; ``model`` itself is left untouched.

    ``ignored_layers`` (the workload's, e.g. the classifier), ``cfg.ignored_layers`` and the layers
    that produce the model's outputs (:func:`output_layers`) keep their output channels.

    Args:
        model: The model to prune.
        example_inputs: Inputs to trace the model's dependency graph with.
        cfg: How to prune (ratio, importance, heads, depth, rank, unstructured sparsity, ...).
        ignored_layers: Layers whose output channels are kept (the workload's, e.g. the classifier).
        loss_fn: ``loss_fn(model) -> loss`` on a batch of training data; needed for
            ``importance="taylor"``.

    Returns:
        The pruned copy.

    Raises:
        ConfigError: A layer name is unknown, or ``importance="taylor"`` is asked for without
            ``loss_fn``.
    """
    student = copy.deepcopy(model).eval()
    keep_names = tuple(ignored_layers) + tuple(cfg.ignored_layers)
    keep = resolve_layers(student, keep_names, field="prune.ignored_layers")
    if cfg.is_structured:
        modules = dict(student.named_modules())
        keep += [modules[n] for n in output_layers(student, example_inputs) if n not in keep_names]
    ratio_layers = dict(
        zip(
            cfg.layer_ratios, resolve_layers(student, tuple(cfg.layer_ratios), field="prune.layer_ratios"), strict=False
        )
    )
    if cfg.is_structured:
        _structured(student, example_inputs, cfg, keep, ratio_layers, loss_fn)
    if cfg.unstructured > 0:
        sparsify(student, cfg.unstructured, keep)
    return student


HEAD_SCOPE_RATIO = 0.01
"""The width ratio given to attention projections that prune heads only (see :func:`_structured`)."""


def _importance(cfg: PruneConfig):
    if cfg.importance == "taylor":
        return tp.importance.GroupTaylorImportance()
    return tp.importance.GroupMagnitudeImportance(p=1 if cfg.importance == "l1" else 2)


def _structured(
    student: nn.Module,
    example_inputs,
    cfg: PruneConfig,
    keep: list[nn.Module],
    ratio_layers: dict[str, nn.Module],
    loss_fn: LossFn | None,
) -> None:
    attention = attention_modules(student)
    ignored = keep + residual_width_layers(student, attention)
    num_heads = {getattr(a, k): a.num_attention_heads for a in attention.values() for k in ("query", "key", "value")}
    head_ratio = cfg.ratio if cfg.head_ratio is None else cfg.head_ratio
    if cfg.importance == "taylor":
        if loss_fn is None:
            raise ConfigError(
                "importance 'taylor' needs gradients of a loss: the workload gives no training loss (use l1 or l2)",
                field="prune.importance",
            )
        student.zero_grad()
        loss_fn(student).backward()
    ratios = {m: r for name, r in cfg.layer_ratios.items() for m in [ratio_layers[name]]}
    if attention and head_ratio > 0:
        # torch-pruning removes heads only inside a scope that also prunes channels (its n_pruned > 0):
        # with no width ratio on the attention's projections, head_ratio alone removed nothing. A ratio
        # just above zero opens the scope; prune_head_dims=False keeps every head's channels whole.
        # (A ratio set on q/k/v themselves in layer_ratios is kept; one set on a parent module is not seen.)
        for a in attention.values():
            for k in ("query", "key", "value"):
                m = getattr(a, k)
                if ratios.get(m, cfg.ratio) == 0:
                    ratios[m] = HEAD_SCOPE_RATIO
    pruner_class = _AlignedPruner if aligned_rounding() else tp.pruner.MetaPruner
    pruner = pruner_class(
        student,
        example_inputs,
        importance=_importance(cfg),
        pruning_ratio=cfg.ratio,
        pruning_ratio_dict=ratios or None,
        global_pruning=cfg.scope == "global",
        ignored_layers=ignored,
        round_to=cfg.round_to,
        num_heads=num_heads,
        prune_num_heads=bool(attention) and head_ratio > 0,
        prune_head_dims=False,
        head_pruning_ratio=head_ratio if attention else 0.0,
    )
    with torch.no_grad():
        pruner.step()
    student.zero_grad(set_to_none=True)
    for a in attention.values():
        # keep the module's bookkeeping true to its smaller projections: HF reshapes by head size
        query = cast(nn.Linear, a.query)
        # torch types Module.__setattr__ as taking tensors and modules only; HF keeps these ints there
        a.num_attention_heads = query.out_features // cast(int, a.attention_head_size)  # type: ignore[assignment]
        a.all_head_size = query.out_features  # type: ignore[assignment]


ROUND_TO_WRITTEN_FOR = "1.6.1"
"""The torch-pruning release whose private ``MetaPruner._round_to`` :class:`_AlignedPruner` overrides."""


@functools.cache
def aligned_rounding() -> bool:
    """Whether the installed torch-pruning is the release :class:`_AlignedPruner` was written for.

    The override replaces a private method: another release may rename it (the override would
    silently do nothing) or change what its arguments mean (it would prune wrong counts). On any
    other release autocl falls back to torch-pruning's own rounding, which is consistent with that
    release, and warns once: channel counts then round down, so high ratios on narrow layers may
    remove nothing (the search reports such trials). ``tests/compress/test_prune_round.py`` pins
    the kept channel counts; re-run it before moving :data:`ROUND_TO_WRITTEN_FOR`."""
    try:
        installed = importlib.metadata.version("torch-pruning")
    except importlib.metadata.PackageNotFoundError:
        installed = "unknown"
    if installed == ROUND_TO_WRITTEN_FOR:
        return True
    warnings.warn(
        f"torch-pruning {installed} is installed; autocl's nearest-multiple round_to was written for "
        f"{ROUND_TO_WRITTEN_FOR}, so channel counts round down as torch-pruning does (high ratios on narrow "
        f"layers may prune nothing): pip install 'torch-pruning=={ROUND_TO_WRITTEN_FOR}' to restore it",
        RuntimeWarning,
        stacklevel=2,
    )
    return False


class _AlignedPruner(tp.pruner.MetaPruner):
    """MetaPruner whose ``round_to`` rounds the channels a layer keeps to the *nearest* multiple, and
    never below one multiple. torch-pruning rounds the kept count down, so on 16-channel layers
    ratios of 0.6 and above kept 0 channels, which it then refuses to do: nothing was pruned at all,
    and 0.6 kept more parameters than 0.4. Layers narrower than two multiples are not rounded.

    Used only with torch-pruning :data:`ROUND_TO_WRITTEN_FOR` (see :func:`aligned_rounding`)."""

    def _round_to(self, n_pruned: int, current_channels: int, round_to: int) -> int:
        kept = current_channels - n_pruned
        if current_channels < 2 * round_to:
            return max(n_pruned, 0)
        rounded = max(round_to, round(kept / round_to) * round_to)
        return max(current_channels - min(rounded, current_channels), 0)


def count_ops(model: nn.Module, example_inputs: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[float, float]:
    """(multiply-accumulates, parameters) of ``model`` on one example input, by torch-pruning's counter."""
    inputs = example_inputs if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    with torch.no_grad():
        macs, params = tp.utils.count_ops_and_params(model.eval(), tuple(inputs))
    return float(macs), float(params)


def achieved_fractions(
    teacher: nn.Module | tuple[float, float],
    student: nn.Module,
    example_inputs: torch.Tensor | tuple[torch.Tensor, ...],
) -> dict[str, float]:
    """What pruning really removed: the student's parameters and multiply-accumulates as fractions
    of the teacher's (1.0: nothing removed). ``teacher`` is the model, or its :func:`count_ops`
    counted once (a search builds many students of one teacher)."""
    macs_t, params_t = teacher if isinstance(teacher, tuple) else count_ops(teacher, example_inputs)
    macs_s, params_s = count_ops(student, example_inputs)
    return {
        "params": round(params_s / params_t, 4) if params_t else 1.0,
        "macs": round(macs_s / macs_t, 4) if macs_t else 1.0,
    }


def prunable_weights(model: nn.Module, keep: list[nn.Module]) -> list[torch.Tensor]:
    kept = {id(m) for m in keep}
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)) and id(m) not in kept]


def sparsify(model: nn.Module, sparsity: float, keep: list[nn.Module]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Zero the ``sparsity`` fraction of smallest-magnitude weights in every Conv/Linear not in
    ``keep``, in place, and return the (weight, keep-mask) pairs so fine-tuning can hold the zeros
    (:func:`apply_masks`). Dense kernels run zeros at full cost: this shrinks the compressed file,
    not the latency."""
    masks = []
    with torch.no_grad():
        for w in prunable_weights(model, keep):
            k = int(sparsity * w.numel())
            if k < 1:
                continue
            threshold = w.abs().flatten().kthvalue(k).values
            mask = w.abs() > threshold
            w.mul_(mask)
            masks.append((w, mask))
    return masks


def apply_masks(masks: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Zero again the weights an optimizer step moved off their pruned zeros."""
    with torch.no_grad():
        for w, mask in masks:
            w.mul_(mask)


def weight_sparsity(model: nn.Module) -> float:
    """Fraction of exactly-zero weights over all Conv/Linear weights.

    Args:
        model: A PyTorch module.

    Returns:
        The fraction, between 0 and 1.
    """
    ws = prunable_weights(model, [])
    total = sum(w.numel() for w in ws)
    return float(sum((w == 0).sum().item() for w in ws) / total) if total else 0.0
