"""The strongest by-hand recipes, written as the parameters of a search space's trials.

A user compressing a CNN for a CPU tries, in order: the whole model in one fast precision (static
int8), then structured pruning at a few ratios with knowledge distillation, then both. On a
transformer, the strongest configuration a peer tool finds (Intel Neural Compressor's tuned one)
is the whole model in one precision on the graph as onnxruntime's optimizer fused it; where the
space offers ``fuse_first``, that twin of each unpruned recipe comes right after it. Those are a
new study's first trials (enqueued), so the front can never be worse than the best of them and the
search spends its budget improving on them.
"""

from __future__ import annotations

from typing import Any

from autocl.space._space import Knob, Range, SearchSpace

RECIPE_RATIOS = (0.0, 0.3, 0.5, 0.7)
"""Prune ratios of the recipes (snapped into the space's own range or choices)."""
RECIPE_TEMPERATURE = 4.0
RECIPE_ALPHA = 0.5


def _snap(knob: Knob | None, wanted: float) -> float | None:
    """The value of ``knob`` closest to ``wanted``; None where the knob is not sampled."""
    if knob is None or isinstance(knob, (int, float)):
        return None
    if isinstance(knob, list):
        return min(knob, key=lambda v: (abs(v - wanted), v))
    assert isinstance(knob, Range)
    v = min(max(wanted, knob.low), knob.high)
    if knob.step:
        v = knob.low + round((v - knob.low) / knob.step) * knob.step
        v = min(v, knob.high)
    return round(v, 6)


def recipe_params(space: SearchSpace, layer_names: list[str]) -> list[dict[str, Any]]:
    """One parameter dict per by-hand recipe.

    The recipes are every uniform precision the space allows, at each of ``RECIPE_RATIOS`` (snapped,
    de-duplicated), no fallback layer, KD at T=4 and alpha 0.5 where the space samples them, on the
    graph as exported; each unpruned one is followed by its ``fuse_first`` twin where the space
    samples that knob. The unpruned fp32 model is the baseline, not a recipe.

    Args:
        space: The search space.
        layer_names: The workload's layer names.

    Returns:
        The recipes as Optuna parameter dicts, ready to enqueue.
    """
    p, d, q = space.prune, space.distill, space.quant
    common: dict[str, Any] = {"prune.importance": p.importance[0]}
    for name, knob, wanted in (
        ("prune.unstructured", p.unstructured, 0.0),
        ("distill.temperature", d.temperature, RECIPE_TEMPERATURE),
        ("distill.alpha", d.alpha, RECIPE_ALPHA),
        ("distill.feature_weight", d.feature_weight, 0.0),
        ("prune.depth", p.depth, 0.0),
        ("prune.rank_ratio", p.rank_ratio, 1.0),
    ):
        value = _snap(knob, wanted)
        if value is not None:
            common[name] = value
    if len(p.scope) > 1:
        common["prune.scope"] = "local" if "local" in p.scope else p.scope[0]
    if len(d.schedule) > 1:
        common["distill.schedule"] = d.schedule[0]
    if len(q.calibration) > 1:
        common["quant.calibration"] = q.calibration[0]
    # by hand means post-training int8 on the graph as exported, with dense weights
    for name, options, plain in (
        ("quant.qat", q.qat, False),
        ("quant.fuse_first", q.fuse_first, False),
        ("cluster.clusters", space.cluster.clusters, 0),
    ):
        if len(options) > 1 and plain in options:
            common[name] = plain
    common.update(space.techniques_off())
    # a peer's tuned config: the unpruned recipes again on the fused graph, where the space has the knob
    fused_twin = len(q.fuse_first) > 1 and True in q.fuse_first
    choices = space.layer_choices(layer_names)
    recipes: list[dict[str, Any]] = []
    for ratio in RECIPE_RATIOS:
        prune: dict[str, Any] = {}
        r = _snap(p.ratio, ratio)
        if r is not None:
            prune["prune.ratio"] = r
        h = _snap(p.head_ratio, ratio)
        if h is not None:
            prune["prune.head_ratio"] = h
        unpruned = all(v == 0 for v in prune.values()) and (r is not None or p.ratio == 0)
        for precision in space.uniform_precisions(layer_names):
            if unpruned and precision == "fp32":
                continue
            if q.encoding == "per_layer":
                bits: dict[str, Any] = {
                    f"bits.{n}": precision for n, c in choices.items() if len(c) > 1 and precision in c
                }
            else:
                bits = {"quant.precision": precision, "quant.fallbacks": 0}
            params = {**common, **prune, **bits}
            twins = [params]
            if unpruned and fused_twin:
                twins.append({**params, "quant.fuse_first": True})
            recipes.extend(t for t in twins if t not in recipes)
    return recipes


__all__ = ["RECIPE_RATIOS", "recipe_params"]
