"""Search spaces: YAML -> :class:`SearchSpace`; ``suggest(trial)`` -> CompressionConfig; recipes."""

from autocl.space._recipes import RECIPE_RATIOS, recipe_params
from autocl.space._space import (
    DistillSpace,
    FallbackSpace,
    FidelitySpace,
    PolishSpace,
    PruneSpace,
    QuantSpace,
    Range,
    SearchSpace,
    load_space,
)

__all__ = [
    "RECIPE_RATIOS",
    "DistillSpace",
    "FallbackSpace",
    "FidelitySpace",
    "PolishSpace",
    "PruneSpace",
    "QuantSpace",
    "Range",
    "SearchSpace",
    "load_space",
    "recipe_params",
]
