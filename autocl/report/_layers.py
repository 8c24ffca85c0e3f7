"""Per-layer views of front members: precision, pruning, and why layers were spared.

Precision comes from each trial's ``bits`` string (one character per layer of the workload, in
model order, ``autocl.config.PRECISION_CODES``). Pruning is read from the student's fp32 ONNX graph
in the artifact cache (found through ``autocl.compress.CacheLayout``): the output channels each
layer kept against the teacher's, so what is shown is what the graph really has (``round_to`` and
coupled channels included), not the nominal ratio. Layers' latency shares are measured by
``autocl.hardware.layer_latency_shares``; here they are only read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from autocl.config import BIT_WIDTHS, PRECISION_CODES
from autocl.report._trials import StudyData, TrialInfo

_PRECISION_OF_CODE: dict[str, str] = {code: name for name, code in PRECISION_CODES.items()}


@dataclass(frozen=True)
class LayerMap:
    """A members x layers grid: ``values[i][j]`` for trial ``trials[i]`` and layer ``layers[j]``
    (``None`` where unknown), with a label per cell for hovering."""

    title: str
    layers: tuple[str, ...]
    trials: tuple[int, ...]
    values: tuple[tuple[float | None, ...], ...]
    labels: tuple[tuple[str, ...], ...]
    note: str = ""

    def value(self, trial: int, layer: str) -> float | None:
        """The cell of ``trial`` and ``layer``.

        Args:
            trial: A trial number of the map.
            layer: A layer of the map.

        Returns:
            The value, or None where it is unknown.
        """
        return self.values[self.trials.index(trial)][self.layers.index(layer)]


def precision_of(code: str) -> tuple[str, int | None]:
    """The precision of one character of a trial's ``bits`` string.

    Args:
        code: One character, e.g. ``'8'``.

    Returns:
        ``(name, bit width)``, e.g. ``('int8', 8)``; an unknown character gives ``("unknown 'x'", None)``:
        shown as such, never guessed.
    """
    name = _PRECISION_OF_CODE.get(code)
    return (name, BIT_WIDTHS[name]) if name else (f"unknown {code!r}", None)


def layer_precisions(data: StudyData, t: TrialInfo) -> dict[str, str]:
    """Precision name per layer of trial ``t``: from ``bits``, else from the stored QuantConfig.

    Args:
        data: The study on one profile.
        t: The trial.

    Returns:
        ``{layer: precision name}`` for every layer of the study.
    """
    if t.bits and len(t.bits) == len(data.layers):
        return {layer: precision_of(c)[0] for layer, c in zip(data.layers, t.bits, strict=False)}
    quant = t.config.get("quant") or {}
    per_layer, default = quant.get("layers") or {}, quant.get("default", "fp32")
    return {layer: per_layer.get(layer, default) for layer in data.layers}


def bits_map(data: StudyData, trials: list[TrialInfo] | None = None) -> LayerMap:
    """Bit width per layer of each front member (32 fp32, 16 fp16, 8 int8, 4 int4).

    Args:
        data: The study on one profile.
        trials: The trials to show (default: the front).

    Returns:
        The ``LayerMap`` of bit widths, labelled with the precision names.
    """
    trials = data.front if trials is None else trials
    values, labels = [], []
    for t in trials:
        precisions = layer_precisions(data, t)
        values.append(tuple(BIT_WIDTHS.get(precisions[layer]) for layer in data.layers))
        labels.append(tuple(precisions[layer] for layer in data.layers))
    return LayerMap("bit width per layer", data.layers, tuple(t.number for t in trials), tuple(values), tuple(labels))


def cache_layout(data: StudyData, cache_root: Path):
    """Where the study's workload keeps its students and artifacts.

    Args:
        data: The study.
        cache_root: The artifact cache's root.

    Returns:
        The ``autocl.compress.CacheLayout`` of the study's workload and workload key.
    """
    from autocl.compress import CacheLayout

    return CacheLayout.of(cache_root, data.workload.get("name", ""), data.fingerprint.get("workload_key", ""))


def cached_artifact(data: StudyData, cache_root: Path, t: TrialInfo) -> Path | None:
    """The cached artifact that was measured for ``t``, identified by its sha256.

    Args:
        data: The study.
        cache_root: The artifact cache's root.
        t: The trial.

    Returns:
        The artifact's path, or None if it is gone from the cache.
    """
    return cache_layout(data, cache_root).find_artifact(t.student_key, t.artifact_sha256)


def pruning_map(data: StudyData, cache_root: Path | None, trials: list[TrialInfo] | None = None) -> LayerMap:
    """Fraction of each layer's output channels removed, per front member.

    Measured on the cached student graphs. Cells are ``None`` where the cache lacks the graph (the
    note says so).

    Args:
        data: The study on one profile.
        cache_root: The artifact cache's root (None: no cache to read).
        trials: The trials to show (default: the front).

    Returns:
        The ``LayerMap`` of pruned fractions.
    """
    from autocl.compress import output_channels

    trials = data.front if trials is None else trials
    teacher: dict[str, int] = {}
    cache = cache_layout(data, cache_root) if cache_root else None
    if cache and cache.baseline.is_file():
        teacher = output_channels(cache.baseline, data.layers)
    values, labels, missing = [], [], []
    for t in trials:
        path = cache.student_onnx(t.student_key) if cache and t.student_key else None
        kept = output_channels(path, data.layers) if teacher and path and path.is_file() else {}
        if teacher and not kept and cache and t.student_key:  # students store no graph, their info.json the channels
            kept = {k: v for k, v in cache.student_channels(t.student_key).items() if k in data.layers}
        if not kept:
            missing.append(t.number)
        row: list[float | None] = []
        lab: list[str] = []
        for layer in data.layers:
            if layer in kept and teacher.get(layer):
                removed = 1 - kept[layer] / teacher[layer]
                row.append(removed)
                lab.append(f"{kept[layer]}/{teacher[layer]} channels kept ({removed:.0%} removed)")
            else:
                row.append(None)
                lab.append("not available")
        values.append(tuple(row))
        labels.append(tuple(lab))
    note = ""
    if missing:
        note = (
            f"per-layer pruning of trial(s) {', '.join(map(str, missing))} is not available: their student "
            "graphs are not in the artifact cache (report on the machine that ran the search, or set AUTOCL_HOME)"
        )
    return LayerMap(
        "output channels removed per layer",
        data.layers,
        tuple(t.number for t in trials),
        tuple(values),
        tuple(labels),
        note,
    )


@dataclass(frozen=True)
class LayerNote:
    """Why one layer of one member was spared: kept at higher precision, or pruned less."""

    layer: str
    kind: str  # "precision" or "pruning"
    text: str
    sensitivity: float | None = None
    latency_share: float | None = None


@dataclass(frozen=True)
class Explanation:
    trial: int
    summary: str
    notes: tuple[LayerNote, ...] = field(default_factory=tuple)


def _lower_choices(data: StudyData, layer: str, precision: str) -> list[str]:
    width = BIT_WIDTHS.get(precision)
    choices = data.layer_choices.get(layer, ())
    return [c for c in choices if width and BIT_WIDTHS.get(c, 99) < width]


def _sensitivity_text(data: StudyData, layer: str, lower: list[str]) -> tuple[str, float | None]:
    table = (data.sensitivity or {}).get(layer)
    if not table:
        return "sensitivity not measured", None
    drops = {p: table[p] for p in lower if isinstance(table.get(p), (int, float))}
    if not drops:
        return "sensitivity not measured at " + "/".join(lower), None
    p, drop = min(drops.items(), key=lambda kv: kv[1])
    return f"{p} alone costs {drop:+.4f} {data.metric_name}", float(drop)


def _share_text(shares: dict[str, float] | None, layer: str) -> tuple[str, float | None]:
    if not shares:
        return "latency share not measured", None
    share = shares.get(layer)
    return (f"{share:.0%} of latency", share) if share is not None else ("latency share not measured", None)


def explain_layers(
    data: StudyData, pruning: LayerMap | None = None, shares: dict[int, dict[str, float]] | None = None
) -> list[Explanation]:
    """Explain each front member's per-layer choices.

    For each front member: the layers kept above the lowest precision the space allowed, and the
    layers pruned less than the member's nominal ratio, each with its sensitivity (the study's
    ``sensitivity`` table) and its share of latency where measured.

    Args:
        data: The study on one profile.
        pruning: The front's pruning map (see :func:`pruning_map`); None: pruning is not explained.
        shares: ``shares[trial][layer]``: each member's layers' shares of its latency.

    Returns:
        One ``Explanation`` per front member.
    """
    out = []
    for t in data.front:
        precisions = layer_precisions(data, t)
        member_shares = (shares or {}).get(t.number)
        notes = []
        for layer in data.layers:
            lower = _lower_choices(data, layer, precisions[layer])
            if lower:
                sens, drop = _sensitivity_text(data, layer, lower)
                share, frac = _share_text(member_shares, layer)
                notes.append(
                    LayerNote(
                        layer,
                        "precision",
                        f"kept at {precisions[layer]} ({'/'.join(lower)} was allowed): {sens}; {share}",
                        drop,
                        frac,
                    )
                )
        ratio = t.prune_ratio or 0.0
        if pruning is not None and t.number in pruning.trials and ratio > 0:
            for layer in data.layers:
                removed = pruning.value(t.number, layer)
                if removed is not None and removed < ratio - 0.02:
                    share, frac = _share_text(member_shares, layer)
                    notes.append(
                        LayerNote(
                            layer,
                            "pruning",
                            f"pruned less: {removed:.0%} of its output channels "
                            f"removed against the nominal {ratio:.0%}; {share}",
                            None,
                            frac,
                        )
                    )
        low = [layer for layer in data.layers if (BIT_WIDTHS.get(precisions[layer]) or 32) < 32]
        summary = f"trial {t.number}: {len(low)} of {len(data.layers)} layers below fp32, {ratio:.0%} nominal pruning"
        if pruning is not None and t.number in pruning.trials:
            row = [v for v in pruning.values[pruning.trials.index(t.number)] if v is not None]
            if not row:
                summary += " (per-layer pruning not available)"
        out.append(Explanation(t.number, summary, tuple(notes)))
    return out


__all__ = [
    "BIT_WIDTHS",
    "PRECISION_CODES",
    "Explanation",
    "LayerMap",
    "LayerNote",
    "bits_map",
    "cached_artifact",
    "explain_layers",
    "layer_precisions",
    "precision_of",
    "pruning_map",
]
