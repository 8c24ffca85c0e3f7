"""Weight sharing: k-means clustering of each layer's weights, held through distillation.

Each clustered layer's weight takes at most ``k`` distinct values (its centroids). During the
fine-tuning that follows, the weights move freely for one optimizer step and are then snapped back
(:meth:`WeightClusters.snap`): each centroid becomes the mean of its members' new values (for plain
gradient descent, the centroid moves by its members' averaged gradient) and every member takes it.

It is for size-bound targets: the file shrinks once the weights are stored as a palette
(``autocl.compress.size``); onnxruntime's CPU kernels still read dense float or int8 weights, so the
latency does not change, and the study reports it that way.
"""

from __future__ import annotations

import torch
from torch import nn

KMEANS_ITERATIONS = 25


def kmeans_1d(values: torch.Tensor, k: int, iterations: int = KMEANS_ITERATIONS) -> tuple[torch.Tensor, torch.Tensor]:
    """Centroids (sorted, at most ``k``) and each value's cluster index: Lloyd's algorithm in one
    dimension, started from ``k`` points spaced linearly between the smallest and the largest value
    (Deep Compression's choice: it keeps the rare large weights, which matter most, resolved)."""
    flat = values.detach().flatten().float()
    k = max(1, min(k, flat.numel()))
    centroids = torch.linspace(float(flat.min()), float(flat.max()), k).unique()
    for _ in range(iterations):
        index = _nearest(flat, centroids)
        sums = torch.zeros_like(centroids).index_add_(0, index, flat)
        counts = torch.zeros_like(centroids).index_add_(0, index, torch.ones_like(flat))
        updated = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)
        if torch.equal(updated, centroids):
            break
        centroids = updated.sort().values
    index = _nearest(flat, centroids)
    return centroids, index.view_as(values)


def _nearest(flat: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Index of the nearest sorted centroid for each value (by the midpoints between centroids)."""
    if len(centroids) == 1:
        return torch.zeros_like(flat, dtype=torch.long)
    mids = (centroids[1:] + centroids[:-1]) / 2
    return torch.bucketize(flat, mids)


class WeightClusters:
    """The cluster assignment of each clustered layer's weight, and how to hold it."""

    def __init__(self, params: dict[str, nn.Parameter], k: int) -> None:
        self.k = k
        self.assignments: dict[str, tuple[nn.Parameter, torch.Tensor, int]] = {}
        with torch.no_grad():
            for name, p in params.items():
                centroids, index = kmeans_1d(p, k)
                p.copy_(centroids[index])
                self.assignments[name] = (p, index, len(centroids))

    def snap(self) -> None:
        """Each weight back to its cluster's mean (the shared centroid), after an optimizer step."""
        with torch.no_grad():
            for p, index, n in self.assignments.values():
                flat = p.flatten()
                sums = torch.zeros(n, dtype=flat.dtype).index_add_(0, index.flatten(), flat)
                counts = torch.zeros(n, dtype=flat.dtype).index_add_(0, index.flatten(), torch.ones_like(flat))
                p.copy_((sums / counts.clamp(min=1))[index])


def cluster_layers(model: nn.Module, layer_names: list[str], k: int) -> WeightClusters:
    """Cluster the weight of each named Linear/Conv layer of ``model`` to at most ``k`` values, in place."""
    modules = dict(model.named_modules())
    params = {
        n: modules[n].weight
        for n in layer_names
        if isinstance(modules.get(n), (nn.Linear, nn.Conv1d, nn.Conv2d)) and modules[n].weight.numel() > k
    }
    return WeightClusters(params, k)


__all__ = ["WeightClusters", "cluster_layers", "kmeans_1d"]
