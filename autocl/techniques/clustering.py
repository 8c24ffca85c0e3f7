"""Weight clustering (weight sharing) as a technique: each quantizable layer's weight takes at most
``clusters`` distinct values, held through distillation (``autocl.compress.cluster``).

It shrinks the palettized size (``autocl.compress.size``), not the latency. Its config and knobs
predate the registry and keep their places, so stored configs, spaces and student keys stay as they
were: ``ClusterConfig`` is ``CompressionConfig.cluster``, ``ClusterSpace`` is ``SearchSpace.cluster``
(parameter ``cluster.clusters``), and its key entry is ``c``.
"""

from __future__ import annotations

from pydantic import BaseModel
from torch import nn

from autocl.compress.cluster import cluster_layers
from autocl.config import ClusterConfig
from autocl.space._space import ClusterSpace
from autocl.techniques import BaseTechnique, BuildContext, Hold


class Clustering(BaseTechnique):
    """k-means weight sharing per layer (see the module docstring)."""

    name = "cluster"
    section = "cluster"
    key_name = "c"
    phase = "train"
    order = 10
    config_type = ClusterConfig
    space_type = ClusterSpace
    legend = "k shared = weights clustered to k values per layer (smaller size, same latency)"

    def is_on(self, config: BaseModel) -> bool:
        assert isinstance(config, ClusterConfig)
        return config.clusters > 0

    def apply(self, student: nn.Module, config: BaseModel, context: BuildContext) -> Hold:
        assert isinstance(config, ClusterConfig)
        clusters = cluster_layers(student, context.layers, config.clusters)
        return Hold(step=lambda _step, _total: clusters.snap())

    def notes(self, config: BaseModel) -> list[str]:
        assert isinstance(config, ClusterConfig)
        return [f"{config.clusters} shared"]

    def card(self, config: BaseModel) -> str:
        assert isinstance(config, ClusterConfig)
        return (
            f"Weight clustering: at most {config.clusters} shared values per layer, held through distillation "
            "(smaller compressed size; the latency does not change)"
        )


TECHNIQUE = Clustering()
