"""Low-rank factorization as a technique: each Linear / 1x1 conv at ``prune.rank_ratio`` (or its
``prune.layer_rank_ratios`` override) of full rank becomes two products (truncated SVD, see
``autocl.compress.lowrank``), where the pair costs fewer MACs than the layer.

A ``structure`` technique: it changes the architecture, after depth and width pruning, and is applied
again when a student is rebuilt from its weights. Its knobs predate the registry and stay in the
prune section (``PruneConfig.rank_ratio``, parameter ``prune.rank_ratio``), keyed with it (``p``),
so stored configs, spaces and student keys are unchanged; the prune section samples them.
"""

from __future__ import annotations

from pydantic import BaseModel
from torch import nn

from autocl.compress.lowrank import factorize_model, lowrank_plan
from autocl.config import PruneConfig
from autocl.space._space import PruneSpace
from autocl.techniques import BaseTechnique, BuildContext


class LowRank(BaseTechnique):
    """Truncated-SVD factorization (see the module docstring)."""

    name = "lowrank"
    section = "prune"
    own_section = False
    key_name = "p"
    phase = "structure"
    order = 50
    config_type = PruneConfig
    space_type = PruneSpace

    def is_on(self, config: BaseModel) -> bool:
        assert isinstance(config, PruneConfig)
        return config.is_lowrank

    def apply(self, student: nn.Module, config: BaseModel, context: BuildContext) -> None:
        assert isinstance(config, PruneConfig)
        plan = lowrank_plan(student, config, tuple(context.workload.ignored_layers))
        context.facts = plan  # ranks, and the layers left whole because the pair would cost more
        factorize_model(student, plan)

    def card(self, config: BaseModel) -> str:
        assert isinstance(config, PruneConfig)
        overrides = ", ".join(f"{n} {r:g}" for n, r in sorted(config.layer_rank_ratios.items()))
        return (
            f"Low-rank factorization (truncated SVD) of Linear and 1x1-conv layers at {config.rank_ratio:g} of "
            f"full rank{f' ({overrides})' if overrides else ''}, where the two products cost less than the layer"
        )

    def recipe_params(self, space: BaseModel) -> dict:
        return {}  # the recipes pin prune.rank_ratio with the prune section's knobs


TECHNIQUE = LowRank()
