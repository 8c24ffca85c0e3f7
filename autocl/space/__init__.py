"""Search spaces: YAML -> :class:`SearchSpace`; ``suggest(trial)`` -> CompressionConfig."""

from autocl.space._space import DistillSpace, PruneSpace, QuantSpace, Range, SearchSpace, load_space

__all__ = ["DistillSpace", "PruneSpace", "QuantSpace", "Range", "SearchSpace", "load_space"]
