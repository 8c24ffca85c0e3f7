"""N:M semi-structured sparsity (2:4 by default): in every group of M consecutive input weights of a
layer, only the N largest in magnitude are kept, and the pattern is held through distillation.

GPUs with sparse tensor cores run 2:4 weights faster; onnxruntime's CPU provider has no sparse
kernels and runs them as dense weights, so on a CPU profile the latency does not change. What does
change is the size that would ship (``autocl.compress.size``: zeros deflate), and that is how the
study reports it: the front's size column, the trial's ``sparsity`` and the note ``2:4 sparse``.

In a search space::

    techniques:
      nm_sparsity:
        pattern: ["off", "2:4"]    # searched: the parameter nm_sparsity.pattern
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from autocl.techniques import BaseTechnique, BuildContext, Hold


def _pattern(value: str) -> str:
    if value == "off":
        return value
    n, _, m = value.partition(":")
    if not (n.isdigit() and m.isdigit() and 0 < int(n) < int(m) <= 16):
        raise ValueError(f"write 'off' or 'N:M' with 0 < N < M <= 16 (e.g. '2:4'), got {value!r}")
    return value


class NMSparsityConfig(BaseModel):
    """One trial's N:M pattern."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    pattern: str = Field(default="off", description="'off' or 'N:M': keep N of every M consecutive input weights")
    _valid = field_validator("pattern")(_pattern)


class NMSparsitySpace(BaseModel):
    """The patterns a search tries."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    pattern: list[str] = Field(default=["off"], min_length=1, description="patterns to try, e.g. ['off', '2:4']")

    @field_validator("pattern")
    @classmethod
    def _valid(cls, value: list[str]) -> list[str]:
        return [_pattern(v) for v in value]


def nm_masks(model: nn.Module, layers: list[str], n: int, m: int) -> dict[str, torch.Tensor]:
    """Zero all but the ``n`` largest-magnitude weights of every group of ``m`` consecutive input
    weights (input channels of a conv) of each named Linear/Conv2d layer, in place.

    A layer whose input width is not a multiple of ``m`` is left dense.

    Returns:
        ``{layer: mask}`` of the layers made sparse (1 kept, 0 zeroed; the weight's shape).
    """
    modules = dict(model.named_modules())
    masks = {}
    with torch.no_grad():
        for name in layers:
            layer = modules.get(name)
            if not isinstance(layer, (nn.Linear, nn.Conv2d)) or layer.weight.shape[1] % m:
                continue
            w = layer.weight
            # input channels last, then groups of m along them
            grouped = (w if w.dim() == 2 else w.permute(0, 2, 3, 1)).reshape(-1, m)
            keep = grouped.abs().topk(n, dim=1).indices
            mask = torch.zeros_like(grouped).scatter_(1, keep, 1.0)
            mask = mask.reshape(w.shape if w.dim() == 2 else w.permute(0, 2, 3, 1).shape)
            mask = mask if w.dim() == 2 else mask.permute(0, 3, 1, 2)
            w.mul_(mask)
            masks[name] = mask.contiguous()
    return masks


class NMSparsity(BaseTechnique):
    """N:M semi-structured sparsity (see the module docstring)."""

    name = "nm_sparsity"
    phase = "train"
    order = 30
    config_type = NMSparsityConfig
    space_type = NMSparsitySpace
    legend = "N:M sparse = N of every M input weights kept (smaller size; no CPU speed-up, no sparse kernels)"

    def is_on(self, config: BaseModel) -> bool:
        assert isinstance(config, NMSparsityConfig)
        return config.pattern != "off"

    def apply(self, student: nn.Module, config: BaseModel, context: BuildContext) -> Hold:
        assert isinstance(config, NMSparsityConfig)
        n, m = (int(v) for v in config.pattern.split(":"))
        layers = [name for name in context.layers if name not in context.ignored_layers]
        masks = nm_masks(student, layers, n, m)
        modules = dict(student.named_modules())
        context.facts = {"pattern": config.pattern, "layers": sorted(masks)}

        def step(_step: int, _total: int) -> None:
            with torch.no_grad():
                for name, mask in masks.items():
                    modules[name].weight.mul_(mask)

        return Hold(step=step)

    def notes(self, config: BaseModel) -> list[str]:
        assert isinstance(config, NMSparsityConfig)
        return [f"{config.pattern} sparse"]

    def card(self, config: BaseModel) -> str:
        assert isinstance(config, NMSparsityConfig)
        return (
            f"N:M semi-structured sparsity {config.pattern} (held through distillation): smaller compressed "
            "size; onnxruntime's CPU provider runs the weights dense, so no speed-up from it"
        )


TECHNIQUE = NMSparsity()
