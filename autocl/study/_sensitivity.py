"""The sensitivity pre-pass: quantize one layer at a time and measure the metric drop.

For every searchable layer and every non-fp32 precision it may take, the unpruned model is
quantized with that layer alone at that precision, and the workload's metric is computed with
onnxruntime on the artifact (first ``sensitivity_samples`` validation rows). The drop is
``baseline - metric`` for higher-is-better metrics (``metric - baseline`` otherwise), so a positive
drop is a loss. The table is stored in the study as user attr ``sensitivity`` =
{layer: {precision: metric_drop}}, and choices whose drop exceeds ``quant.sensitivity_max_drop``
are dropped from the layer's search space. The single-layer artifacts are deleted once evaluated:
kept, they would fill the disk (one full model per layer and precision).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import optuna

from autocl.compress import Compressor
from autocl.compress.support import layer_op_types, refused_by_all
from autocl.config import CompressionConfig, QuantConfig
from autocl.errors import StudyError
from autocl.evaluate import evaluate_artifact
from autocl.hardware import HardwareProfile
from autocl.space import SearchSpace

Progress = Callable[[str], None]


def _own_link(path: Path) -> Path:
    """A name of ``path``'s file private to this process (a hard link, else a copy), which stays
    readable when another process deletes ``path``."""
    own = path.with_name(f"{path.stem}.{os.getpid()}.eval{path.suffix}")
    own.unlink(missing_ok=True)
    try:
        os.link(path, own)
    except FileNotFoundError:
        raise
    except OSError:  # no hard links on this file system
        shutil.copyfile(path, own)
    return own


def sensitivity_table(
    compressor: Compressor,
    space: SearchSpace,
    profile: HardwareProfile,
    progress: Progress = lambda s: None,
    precisions: set[str] | None = None,
) -> dict[str, dict[str, float]]:
    """{layer: {precision: metric drop}} for the space's (already restricted) per-layer choices, or
    for those among ``precisions`` only."""
    w, q = compressor.workload, space.quant
    limit = q.sensitivity_samples

    def metric(quant: QuantConfig, keep: bool = True) -> float:
        # workers starting one new study at once run this pass side by side on one cache, and each
        # deletes the single-layer artifacts it is done with: each evaluates its own link to the file.
        # The shipped size is not needed here, and costs seconds per transformer artifact.
        for attempt in range(3):
            try:
                art = compressor.artifact(CompressionConfig(quant=quant), size=keep)
                own = _own_link(art.path)
            except FileNotFoundError:  # another worker deleted it meanwhile: build it again
                if attempt == 2:
                    raise
                continue
            try:
                return evaluate_artifact(own, w, profile, limit=limit)
            finally:
                own.unlink(missing_ok=True)
                if not keep:  # one artifact per layer x precision would fill the disk (MiniLM: 117 x ~60 MB)
                    for done in (art.path, art.path.with_name(art.path.name + ".sha256")):
                        done.unlink(missing_ok=True)
        raise AssertionError("unreachable")  # pragma: no cover

    base_quant = QuantConfig(
        calibration_samples=int(_first(q.calibration_samples)),
        calibration=q.calibration[0],
        int4_block_size=q.int4_block_size[0],
    )
    base = metric(base_quant)
    table: dict[str, dict[str, float]] = {}
    choices = space.layer_choices(compressor.layers)
    todo = [
        (layer, p) for layer, ps in choices.items() for p in ps if p != "fp32" and (not precisions or p in precisions)
    ]
    for i, (layer, p) in enumerate(todo):
        progress(f"sensitivity {i + 1}/{len(todo)}: {layer} {p}")
        m = metric(base_quant.model_copy(update={"layers": {layer: p}}), keep=False)
        drop = base - m if w.higher_is_better else m - base
        table.setdefault(layer, {})[p] = round(float(drop), 6)
    return table


def _first(knob):
    if isinstance(knob, list):
        return knob[0]
    return getattr(knob, "low", knob)


def hopeless_choices(table: dict[str, dict[str, float]], max_drop: float) -> dict[str, dict[str, str]]:
    """Choices whose single-layer drop exceeds ``max_drop``, each with the reason (NaN counts)."""
    out: dict[str, dict[str, str]] = {}
    for layer, drops in table.items():
        for p, d in drops.items():
            if not d <= max_drop:
                out.setdefault(layer, {})[p] = f"metric drop {d:.4g} alone > sensitivity_max_drop {max_drop:g}"
    return out


CHEAP_WORK = 1_000_000_000
"""The pre-pass runs by default on the (layer, precision) pairs whose count x teacher parameters
stays under this: on the mnist CNN (10 pairs, 0.7M parameters) every pair, in seconds; on MiniLM
(117 pairs, 22.7M parameters) only the int8_dynamic column (39 pairs, a few minutes alone on 2 cores).
Static int8 pairs cost a calibration each, so they are the first left out."""
CHEAP_FIRST = ("int8_dynamic", "fp16", "int4", "int8")
"""Precisions by the cost of one single-layer artifact: no calibration first."""


def cheap_precisions(compressor: Compressor, space: SearchSpace) -> set[str]:
    """The precisions whose pre-pass costs little enough to run without being asked: the longest
    prefix of :data:`CHEAP_FIRST` (among the space's choices) whose pairs stay under
    :data:`CHEAP_WORK`; empty when even the first does not."""
    choices = space.layer_choices(compressor.layers).values()
    params = sum(p.numel() for p in compressor.workload.model.parameters())
    wanted = sorted({p for c in choices for p in c if p != "fp32"}, key=lambda p: CHEAP_FIRST.index(p))
    taken: set[str] = set()
    for p in wanted:
        pairs = sum(1 for c in choices for q in c if q in taken | {p})
        if pairs * params > CHEAP_WORK:
            break
        taken.add(p)
    return taken


NOTICEABLE_DROP = 0.002
"""Single-layer drops at or below this are ties: validation noise on a thousand rows."""


def ranking(table: dict[str, dict[str, float]]) -> dict[str, list[str]]:
    """precision -> layers in the order they fall back: layers whose single-layer drop is noticeable
    (above :data:`NOTICEABLE_DROP`, NaN first), largest first; then the ties with the network's edges
    first (the first layer, which reads few channels and runs int8 inefficiently, and the last)."""
    layers = list(table)
    edges = layers[:1] + layers[-1:] + layers[1:-1] if len(layers) > 2 else layers
    out: dict[str, list[str]] = {}
    for p in sorted({p for drops in table.values() for p in drops}):
        drops = {n: table[n][p] for n in layers if p in table[n]}
        loud = sorted(
            (n for n, d in drops.items() if not d <= NOTICEABLE_DROP),
            key=lambda n: -drops[n] if drops[n] == drops[n] else float("-inf"),
        )
        out[p] = loud + [n for n in edges if n in drops and n not in loud]
    return out


def prepare_space(
    study: optuna.Study,
    space: SearchSpace,
    compressor: Compressor,
    profile: HardwareProfile,
    *,
    others: Sequence[HardwareProfile] = (),
    sensitivity: bool | None = None,
    progress: Progress = lambda s: None,
) -> SearchSpace:
    """Bind the space to the model and the profile before any trial: refuse precisions no target's
    provider runs on a layer (``profile`` and ``others``: a study searched on several targets keeps a
    precision one of them runs, as its front for that target needs it; stored as study user attr
    ``refused_precisions``), and with ``sensitivity`` (None: on a
    new study, for the :func:`cheap_precisions` only) run the pre-pass once per study (stored as
    ``sensitivity``), drop hopeless choices and rank the layers that fall back first. A resumed study
    reuses what it stored, so every trial of a study sees the same choices."""
    layers = compressor.layers
    wanted = sorted({p for ps in space._declared_choices(layers).values() for p in ps} | {space.quant.default})
    providers = [p.execution_provider for p in (profile, *others)]
    refused = refused_by_all(layer_op_types(compressor.baseline(), layers), wanted, providers)
    if "refused_precisions" not in study.user_attrs:
        study.set_user_attr("refused_precisions", refused)
    bound = space.restrict(layers, refused)
    stored = study.user_attrs.get("sensitivity")
    has_trials = any(t.state.is_finished() for t in study.trials)
    if sensitivity and stored is None and has_trials:
        raise StudyError(
            f"study {study.study_name!r} was searched without the sensitivity pre-pass; resume it "
            "without --sensitivity, or start a new study to use it"
        )
    only: set[str] | None = None
    if sensitivity is None:
        only = cheap_precisions(compressor, bound)
        sensitivity = not has_trials and stored is None and bool(only)
    if stored is None and sensitivity:
        stored = sensitivity_table(compressor, bound, profile, progress, only)
        study.set_user_attr("sensitivity", stored)
    if stored is not None:
        bound = space.restrict(layers, refused, hopeless_choices(stored, space.quant.sensitivity_max_drop))
        bound = bound.with_ranking(ranking(stored))
    return bound
