"""Low-rank factorization: truncated SVD of Linear and 1x1-convolution weights.

A layer ``y = W x + b`` (W: out x in) becomes ``y = U (V x) + b`` with V: r x in and U: out x r,
from the rank-r truncated SVD ``W ~ (U_r S_r^1/2)(S_r^1/2 V_r^T)``. The pair costs ``r (in + out)``
multiply-accumulates per position against ``in * out``: a layer whose pair would cost as much as or
more than the original is left alone, and the plan says so (:func:`lowrank_plan`).

The factorized layer is one module (:class:`LowRankLinear`, :class:`LowRankConv2d`) that keeps the
original layer's name and computes both products itself: the exported graph has two MatMul (or
Conv) nodes under that name, so a per-layer precision chosen for the layer applies to both.
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch_pruning.utils import op_counter

from autocl.config import PruneConfig
from autocl.errors import ConfigError


class LowRankLinear(nn.Module):
    """``x @ V^T @ U^T + b``: two thin products in place of one ``nn.Linear``."""

    def __init__(self, v: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.v = nn.Parameter(v)  # rank x in
        self.u = nn.Parameter(u)  # out x rank
        self.bias = None if bias is None else nn.Parameter(bias)
        self.in_features, self.out_features, self.rank = v.shape[1], u.shape[0], v.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.linear(x, self.v), self.u, self.bias)


class LowRankConv2d(nn.Module):
    """A 1x1 convolution as two: ``in -> rank`` (with the original stride), then ``rank -> out``."""

    def __init__(self, v: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None, stride) -> None:
        super().__init__()
        self.v = nn.Parameter(v[:, :, None, None])
        self.u = nn.Parameter(u[:, :, None, None])
        self.bias = None if bias is None else nn.Parameter(bias)
        self.stride = stride
        self.in_channels, self.out_channels, self.rank = v.shape[1], u.shape[0], v.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(x, self.v, stride=self.stride), self.u, self.bias)


def _count_lowrank(module: nn.Module, inputs, output) -> None:
    """torch-pruning's op counter for the factorized layers (so ``MACs kept`` counts them)."""
    layer = cast("LowRankLinear | LowRankConv2d", module)
    positions = output.numel() // output.shape[-1 if isinstance(module, LowRankLinear) else 1]
    bias = output.numel() if layer.bias is not None else 0
    # __flops__ is torch-pruning's counter (an int it sets on the module): torch types Module attributes as
    # tensors or modules only
    module.__flops__ += int(positions * layer.rank * (layer.v.shape[1] + layer.u.shape[0]) + bias)  # type: ignore[operator,assignment]


op_counter.MODULES_MAPPING[LowRankLinear] = _count_lowrank
op_counter.MODULES_MAPPING[LowRankConv2d] = _count_lowrank


def _factorizable(m: nn.Module) -> bool:
    if isinstance(m, nn.Linear):
        return True
    return (
        isinstance(m, nn.Conv2d)
        and m.kernel_size == (1, 1)
        and m.groups == 1
        and m.padding in ((0, 0), 0)
        and m.dilation == (1, 1)
    )


def _dims(m: nn.Module) -> tuple[int, int]:
    if isinstance(m, nn.Linear):
        return m.in_features, m.out_features
    conv = cast(nn.Conv2d, m)
    return conv.in_channels, conv.out_channels


def rank_of(ratio: float, n_in: int, n_out: int) -> int:
    """The rank kept at ``ratio`` of the layer's full rank ``min(in, out)`` (at least 1)."""
    return max(1, math.ceil(ratio * min(n_in, n_out) - 1e-9))


def lowrank_plan(model: nn.Module, cfg: PruneConfig, ignored: tuple[str, ...] = ()) -> dict[str, dict]:
    """Per Linear / 1x1-conv layer of ``model`` with a rank ratio below 1: ``{"rank", "of", "factorized"}``,
    and ``"reason"`` where it is left alone (the pair would not have fewer multiply-accumulates).
    Layers in ``ignored`` (the workload's and ``cfg.ignored_layers``) are not factorized."""
    modules = dict(model.named_modules())
    for name in cfg.layer_rank_ratios:
        if name not in modules or not _factorizable(modules[name]):
            raise ConfigError(
                f"layer {name!r} is not a Linear or 1x1 convolution of the model (run 'autocl layers' to list them)",
                field="prune.layer_rank_ratios",
            )
    skip = set(ignored) | set(cfg.ignored_layers)
    plan: dict[str, dict] = {}
    for name, m in modules.items():
        ratio = cfg.layer_rank_ratios.get(name, cfg.rank_ratio)
        if not _factorizable(m) or ratio >= 1.0 or name in skip:
            continue
        n_in, n_out = _dims(m)
        r = rank_of(ratio, n_in, n_out)
        entry: dict[str, Any] = {"rank": r, "of": min(n_in, n_out), "factorized": r * (n_in + n_out) < n_in * n_out}
        if not entry["factorized"]:
            entry["reason"] = (
                f"rank {r} of {n_in}x{n_out} costs {r * (n_in + n_out)} MACs per position, "
                f"the layer {n_in * n_out}: left whole"
            )
        plan[name] = entry
    return plan


def factorize(layer: nn.Linear | nn.Conv2d, rank: int) -> nn.Module:
    """The rank-``rank`` truncated SVD of ``layer`` (a Linear or 1x1 conv) as a two-product module."""
    w = layer.weight.detach().reshape(layer.weight.shape[0], -1).double()
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    root = s[:rank].sqrt()
    left, right = (u[:, :rank] * root).float(), (root[:, None] * vh[:rank]).float()
    bias = None if layer.bias is None else layer.bias.detach().clone()
    if isinstance(layer, nn.Linear):
        return LowRankLinear(right.contiguous(), left.contiguous(), bias)
    return LowRankConv2d(right.contiguous(), left.contiguous(), bias, layer.stride)


def factorize_model(model: nn.Module, plan: dict[str, dict]) -> nn.Module:
    """Replace, in place, every layer the plan factorizes; returns ``model``."""
    for name, entry in plan.items():
        if not entry["factorized"]:
            continue
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, factorize(getattr(parent, attr), entry["rank"]))
    return model


__all__ = ["LowRankConv2d", "LowRankLinear", "factorize", "factorize_model", "lowrank_plan", "rank_of"]
