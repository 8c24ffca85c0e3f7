"""Search spaces: YAML declarations of the knobs, and ``suggest(trial) -> CompressionConfig``.

This is the one module that knows both Optuna trials and autocl's configuration records. Every
numeric knob is written as a fixed number, a list of choices, or a range ``{low, high, step, log}``.

Per-layer precision choices are bound to a real model and target with :meth:`SearchSpace.restrict`:
a precision the profile's execution provider cannot run on a layer is refused there, with its
reason (an error when the space asked for it on that layer by name), and a sensitivity pre-pass can
drop choices that are clearly hopeless.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import optuna
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from autocl.config import (
    PRECISIONS,
    CalibrationMethod,
    ClusterConfig,
    CompressionConfig,
    DistillConfig,
    Precision,
    PruneConfig,
    QuantConfig,
    load_yaml_model,
)
from autocl.errors import ConfigError
from autocl.space._knobs import Knob, Range
from autocl.space._knobs import bounds_check as _bounds_check
from autocl.space._knobs import pick as _pick

if TYPE_CHECKING:
    from autocl.techniques import Technique


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _without_defaults(space: BaseModel, dumped: dict, knobs: tuple[str, ...]) -> dict:
    """``dumped`` without the ``knobs`` that are at their defaults: knobs added to the space later
    leave out of a space's fingerprint while unused, so studies searched before them still resume."""
    fields = type(space).model_fields
    for name in knobs:
        if name in dumped and getattr(space, name) == fields[name].get_default(call_default_factory=True):
            del dumped[name]
    return dumped


def _suggest(trial: optuna.Trial, name: str, knob: Knob, *, integer: bool = False) -> float:
    if isinstance(knob, Range):
        if integer:
            return trial.suggest_int(name, int(knob.low), int(knob.high), step=int(knob.step or 1), log=knob.log)
        return trial.suggest_float(name, knob.low, knob.high, step=knob.step, log=knob.log)
    if isinstance(knob, list):
        return trial.suggest_categorical(name, knob)
    return knob


class PruneSpace(_Strict):
    ratio: Knob = Field(default=Range(low=0.0, high=0.8, step=0.1), description="channel / FFN-neuron pruning ratio")
    importance: list[Literal["l1", "l2", "taylor"]] = Field(default=["l2"], min_length=1)
    scope: list[Literal["local", "global"]] = Field(
        default=["local"], min_length=1, description="ratio per layer or ranked globally"
    )
    head_ratio: Knob | None = Field(default=None, description="attention heads removed (default: the ratio)")
    layer_ratios: dict[str, Knob] = Field(default_factory=dict, description="per-layer ratio overrides")
    unstructured: Knob = Field(
        default=0.0, description="magnitude sparsity after distillation (smaller compressed, not faster)"
    )
    ignored_layers: list[str] = Field(default_factory=list, description="layers never pruned")
    round_to: int | None = Field(default=8, ge=1, description="channel counts kept multiples of this")
    depth: Knob = Field(
        default=0.0, description="transformer layers / residual blocks removed (fraction < 1, or count)"
    )
    depth_criterion: list[Literal["uniform", "importance"]] = Field(
        default=["uniform"],
        min_length=1,
        description=("which blocks go: evenly spaced ones kept, or the least important by measured loss"),
    )
    rank_ratio: Knob = Field(default=1.0, description="low-rank factorization of Linear/1x1-conv weights (1: off)")
    layer_rank_ratios: dict[str, Knob] = Field(default_factory=dict, description="per-layer rank ratio overrides")

    _ratio = field_validator("ratio", "head_ratio")(_bounds_check(PruneConfig, "ratio"))
    _depth = field_validator("depth")(_bounds_check(PruneConfig, "depth"))
    _rank_ratio = field_validator("rank_ratio")(_bounds_check(PruneConfig, "rank_ratio"))

    def most_depth(self) -> float:
        """The largest ``depth`` the space can sample.

        Returns:
            The largest depth fraction (0: depth pruning off).
        """
        d = self.depth
        return float(d.high if isinstance(d, Range) else max(d) if isinstance(d, list) else d)

    @model_serializer(mode="wrap")
    def _stable(self, handler):
        return _without_defaults(self, handler(self), ("depth", "depth_criterion", "rank_ratio", "layer_rank_ratios"))

    _unstructured = field_validator("unstructured")(_bounds_check(PruneConfig, "unstructured"))

    @field_validator("layer_ratios")
    @classmethod
    def _layer_ratios(cls, value: dict, info: ValidationInfo) -> dict:
        for knob in value.values():
            _bounds_check(PruneConfig, "ratio")(knob, info)
        return value


class PolishSpace(_Strict):
    """Long distillation of the front's pruned students ("polish"), after short screening.

    Every trial screens its student with ``distill.steps`` short steps. Every ``every`` screened
    trials, and once at the end, the fastest pruned members on or near the front are distilled
    again for ``epochs`` passes over the training rows (warm-up, cosine decay, early stop on a
    held-out tenth of the training rows) and re-measured as new trials marked ``polish_of``. The
    front therefore reports polished students; the screened values stay in their own trials."""

    epochs: float = Field(default=4.0, ge=0.0, le=1000.0, description="passes over the training rows (0: no polishing)")
    lr: float | None = Field(default=None, gt=0.0, le=1.0, description="learning rate [default: distill.lr]")
    warmup: float = Field(default=0.05, ge=0.0, lt=1.0, description="fraction of the steps spent warming up")
    early_stop: bool = Field(default=True, description="keep the student that did best on held-out training rows")
    every: int = Field(default=8, ge=1, description="screened trials between two polishing rounds")
    members: int = Field(default=2, ge=0, le=100, description="members polished per round")
    window: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description=(
            "only members whose screened metric drop (baseline minus metric, in the metric's units) is at most this "
            "are polished"
        ),
    )
    max_steps: int = Field(default=5000, ge=1, description="cap on the steps of one polishing run")


class FidelitySpace(_Strict):
    """A multi-fidelity ladder over distillation steps (successive halving, asynchronous as ASHA).

    Every distilled student is screened at the first rung; at each rung the top ``1/eta`` of the
    students that reached it (ranked in non-dominated layers on held-out-training metric and
    latency) are promoted and resume from their checkpoint to the next rung. It replaces the
    screening steps (``distill.steps``) and polishing (``distill.polish``): the last rung is the long
    schedule. Rungs are cumulative steps of one learning-rate schedule that spans the last rung."""

    rungs: list[int] = Field(min_length=1, description="cumulative distillation steps of each rung, increasing")
    eta: int = Field(default=3, ge=2, le=100, description="the top 1/eta of a rung's students go on to the next")

    @field_validator("rungs")
    @classmethod
    def _increasing(cls, value: list[int]) -> list[int]:
        if any(r < 1 for r in value):
            raise ValueError(f"rungs must be positive step counts, got {value}")
        if any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError(f"rungs must be strictly increasing, got {value}")
        return value


class DistillSpace(_Strict):
    temperature: Knob = Range(low=1.0, high=8.0, step=1.0)
    alpha: Knob = Range(low=0.1, high=0.9, step=0.2)
    steps: Knob = 60
    lr: Knob = 1e-3
    batch_size: int = Field(default=64, ge=1)
    schedule: list[Literal["cosine", "linear", "constant"]] = Field(default=["cosine"], min_length=1)
    warmup_steps: int = Field(default=0, ge=0)
    feature_weight: Knob = Field(default=0.0, description="intermediate-feature distillation weight (0: off)")
    polish: PolishSpace = Field(default_factory=PolishSpace)
    fidelity: FidelitySpace | None = Field(
        default=None, description="distillation as a ladder of rungs (replaces the screening steps and polishing)"
    )

    @model_validator(mode="after")
    def _ladder_under_cap(self) -> DistillSpace:
        if self.fidelity is not None and self.fidelity.rungs[-1] > self.polish.max_steps:
            raise ValueError(
                f"fidelity.rungs: rung {self.fidelity.rungs[-1]} is above the polish cap distill.polish.max_steps "
                f"({self.polish.max_steps}); lower the rung or raise the cap"
            )
        if self.fidelity is not None and isinstance(self.steps, (list, Range)):
            raise ValueError(
                "steps: with a fidelity ladder the rungs set the steps; give distill.steps as one number or leave it out"
            )
        return self

    @model_serializer(mode="wrap")
    def _stable(self, handler):
        return _without_defaults(self, handler(self), ("fidelity",))

    _temperature = field_validator("temperature")(_bounds_check(DistillConfig, "temperature"))
    _alpha = field_validator("alpha")(_bounds_check(DistillConfig, "alpha"))
    _steps = field_validator("steps")(_bounds_check(DistillConfig, "steps"))
    _lr = field_validator("lr")(_bounds_check(DistillConfig, "lr"))
    _feature_weight = field_validator("feature_weight")(_bounds_check(DistillConfig, "feature_weight"))


class FallbackSpace(_Strict):
    """Per-layer precision as fallbacks: the model takes one precision, and the ``k`` layers most
    sensitive to it (from the sensitivity pre-pass, else first and last layers first) fall back to
    one of ``precisions``. A handful of knobs the sampler can learn, instead of one coin flip per
    layer, and no quantize/dequantize pair at every fp32/int8 boundary the coin flips create."""

    precisions: list[Precision] = Field(default=["fp32"], min_length=1, description="what a fallback layer takes")
    max_layers: int = Field(default=3, ge=0, le=1000, description="at most this many layers fall back")


class QuantSpace(_Strict):
    precisions: list[Precision] = Field(
        default=["fp32", "int8"],
        min_length=1,
        description=(
            "choices of the model-wide precision (encoding fallbacks), or of every layer (encoding per_layer)"
        ),
    )
    encoding: Literal["fallbacks", "per_layer"] = Field(
        default="fallbacks",
        description=(
            "fallbacks: one precision for the model plus a few fallback layers; per_layer: an independent "
            "choice per layer (2^layers combinations: kept for comparison)"
        ),
    )
    fallback: FallbackSpace = Field(default_factory=FallbackSpace)
    layers: Literal["all"] | list[str] | dict[str, list[Precision]] = Field(
        default="all", description="'all', a list of layers to search (others take the default), or layer -> choices"
    )
    default: Precision = "fp32"
    calibration_samples: Knob = Field(default=128, description="training rows that calibrate static int8")
    calibration: list[CalibrationMethod] = Field(
        default=["minmax"], min_length=1, description="static int8 range estimator"
    )
    int4_block_size: list[int] = Field(default=[32], min_length=1, description="MatMulNBits block sizes to try")
    fuse_first: list[bool] = Field(
        default=[False],
        min_length=1,
        description=("apply onnxruntime's extended fusions before quantizing (false, true or both to search it)"),
    )
    sensitivity_max_drop: float = Field(
        default=0.05,
        ge=0.0,
        description=(
            "with the sensitivity pre-pass: a precision whose metric drop, applied to that one layer alone, "
            "exceeds this is dropped from the layer's choices"
        ),
    )
    sensitivity_samples: int = Field(default=256, ge=1, description="validation rows the pre-pass evaluates on")
    qat: list[bool] = Field(
        default=[False],
        min_length=1,
        description=(
            "post-training (false) or quantization-aware training (true) of the static int8 layers; sampled only "
            "for trials with static int8 layers"
        ),
    )

    @model_serializer(mode="wrap")
    def _stable(self, handler):
        return _without_defaults(self, handler(self), ("fuse_first", "qat"))


class ClusterSpace(_Strict):
    clusters: list[int] = Field(
        default=[0],
        min_length=1,
        description=(
            "weight-sharing cluster counts per layer to try (0: off); for size-bound targets, latency does not change"
        ),
    )

    @field_validator("clusters")
    @classmethod
    def _valid(cls, value: list[int]) -> list[int]:
        for v in value:
            ClusterConfig(clusters=v)
        return value


class SearchSpace(_Strict):
    """A validated search space; ``bind(layer_names)`` checks it against a real model."""

    name: str = "custom"
    description: str = ""
    prune: PruneSpace = Field(default_factory=PruneSpace)
    distill: DistillSpace = Field(default_factory=DistillSpace)
    quant: QuantSpace = Field(default_factory=QuantSpace)
    cluster: ClusterSpace = Field(default_factory=ClusterSpace)
    techniques: dict[str, Any] = Field(
        default_factory=dict,
        description="technique name -> its knobs, for techniques of the registry (autocl.techniques)",
    )
    source: str = Field(default="<space>", exclude=True)
    _choices: dict[str, list[str]] | None = PrivateAttr(None)
    _ranking: dict[str, list[str]] | None = PrivateAttr(None)

    @model_serializer(mode="wrap")
    def _stable(self, handler):
        return _without_defaults(self, handler(self), ("cluster", "techniques"))

    @field_validator("techniques", mode="before")
    @classmethod
    def _known_techniques(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        from autocl.techniques import validate_sections

        return validate_sections(value, "space")

    def technique_space(self, technique: Technique) -> BaseModel:
        """``technique``'s knobs in this space (its defaults, "off", when the space leaves it out)."""
        section = getattr(technique, "section", None)
        if section is not None:
            return getattr(self, section)
        return self.techniques.get(technique.name) or technique.space_type()

    def techniques_off(self) -> dict[str, Any]:
        """The parameters that turn every plug-in technique off (what the by-hand recipes pin)."""
        from autocl.techniques import techniques

        out: dict[str, Any] = {}
        for t in techniques():
            if getattr(t, "section", None) is not None or t.name in self.techniques:
                out.update(t.recipe_params(self.technique_space(t)))
        return out

    def _suggest_techniques(self, trial: optuna.Trial) -> dict[str, Any]:
        """The ``CompressionConfig`` fields of the registry's techniques for one trial: a built-in's own
        field (``cluster``), and ``techniques`` with each plug-in the space names and the trial turns on."""
        from autocl.techniques import techniques

        fields: dict[str, Any] = {}
        plugins = {}
        for t in techniques():
            section = getattr(t, "section", None)
            if section is not None:
                if getattr(t, "own_section", True):
                    fields[section] = t.suggest(trial, self.technique_space(t))
            elif t.name in self.techniques:
                conf = t.suggest(trial, self.technique_space(t))
                if t.is_on(conf):
                    plugins[t.name] = conf
        return {**fields, "techniques": plugins}

    def with_ranking(self, ranking: dict[str, list[str]] | None) -> SearchSpace:
        """A copy whose fallback layers are chosen by ``ranking``.

        Args:
            ranking: precision -> layers, most sensitive to that precision first (the sensitivity
                pre-pass's order); None: the default order (see :meth:`ranking`).

        Returns:
            The copy (its per-layer choices kept).
        """
        out = self.model_copy()
        out._choices = self._choices
        out._ranking = ranking
        return out

    def ranking(self, precision: str, layer_names: list[str]) -> list[str]:
        """Layers in the order they fall back from ``precision``.

        Args:
            precision: The model-wide precision.
            layer_names: The layers.

        Returns:
            The stored ranking's layers (then the others), else the first and the last layer first (a
            network's edges are the usual casualties of low precision).
        """
        known = (self._ranking or {}).get(precision)
        if known:
            rest = [n for n in layer_names if n not in known]
            return [n for n in known if n in layer_names] + rest
        if len(layer_names) <= 2:
            return list(layer_names)
        return [layer_names[0], layer_names[-1], *layer_names[1:-1]]

    @property
    def fingerprint(self) -> str:
        """A short hash of the space's contents (part of a study's fingerprint)."""
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]

    def layer_choices(self, layer_names: list[str]) -> dict[str, list[str]]:
        """Per quantizable layer, the precisions the search may pick.

        Args:
            layer_names: The model's quantizable layers.

        Returns:
            ``{layer: precisions}`` (after :meth:`restrict`, the restricted ones).

        Raises:
            ConfigError: The space names a layer the model does not have, or gives a layer no precision.
        """
        if self._choices is not None:
            return {n: list(c) for n, c in self._choices.items() if n in layer_names}
        return self._declared_choices(layer_names)

    def restrict(
        self,
        layer_names: list[str],
        refused: dict[str, dict[str, str]],
        hopeless: dict[str, dict[str, str]] | None = None,
    ) -> SearchSpace:
        """A copy whose per-layer choices leave out what the target cannot run and what is hopeless.

        A refused precision the space names for one layer explicitly, or as the default of unsearched
        layers, is an error carrying the reason; one that came from the generic ``precisions`` list is
        dropped.

        Args:
            layer_names: The model's quantizable layers.
            refused: layer -> precision -> reason the target cannot run it.
            hopeless: layer -> precision -> reason, what a sensitivity pre-pass found hopeless (fp32 is
                always kept).

        Returns:
            The restricted copy.

        Raises:
            ConfigError: A refused precision is named explicitly or as the default, or a layer is left
                with no precision (or see :meth:`layer_choices`).
        """
        declared = self._declared_choices(layer_names)
        explicit = isinstance(self.quant.layers, dict)
        for name in layer_names:
            if name not in declared and self.quant.default in refused.get(name, {}):
                raise ConfigError(
                    f"layer {name!r} cannot take the default precision {self.quant.default!r} on this "
                    f"target: {refused[name][self.quant.default]}",
                    file=self.source,
                    field="quant.default",
                )
        choices: dict[str, list[str]] = {}
        for name, options in declared.items():
            bad = refused.get(name, {})
            if explicit and any(p in bad for p in options):
                p = next(p for p in options if p in bad)
                raise ConfigError(
                    f"layer {name!r} cannot be {p!r} on this target: {bad[p]}",
                    file=self.source,
                    field=f"quant.layers.{name}",
                )
            kept = [p for p in options if p not in bad]
            if not kept:
                raise ConfigError(
                    f"no precision of {options} can run on layer {name!r} on this target: "
                    + "; ".join(f"{p}: {bad[p]}" for p in options),
                    file=self.source,
                    field="quant.precisions",
                )
            drop = (hopeless or {}).get(name, {})
            kept = [p for p in kept if p not in drop or p == "fp32"] or ["fp32"]
            choices[name] = kept
        out = self.model_copy()
        out._choices = choices
        out._ranking = self._ranking
        return out

    def _declared_choices(self, layer_names: list[str]) -> dict[str, list[str]]:
        q = self.quant
        if q.layers == "all":
            return {name: list(q.precisions) for name in layer_names}
        wanted = q.layers if isinstance(q.layers, dict) else {n: list(q.precisions) for n in q.layers}
        for name in wanted:
            if name not in layer_names:
                raise ConfigError(
                    f"unknown layer {name!r}; the model's quantizable layers are: {', '.join(layer_names)}",
                    file=self.source,
                    field=f"quant.layers.{name}",
                )
        for name, choices in wanted.items():
            if not choices:
                raise ConfigError("needs at least one precision", file=self.source, field=f"quant.layers.{name}")
        return {name: list(wanted[name]) for name in layer_names if name in wanted}

    def check_against(self, layer_names: list[str], module_names: set[str]) -> None:
        """Refuse layer names the model does not have, naming the field and how to list them.

        Args:
            layer_names: The model's quantizable layers.
            module_names: All the model's module names.

        Raises:
            ConfigError: ``quant.layers``, ``prune.ignored_layers`` or ``prune.layer_ratios`` names an
                unknown layer.
        """
        self._declared_choices(layer_names)
        for field, names in (
            ("prune.ignored_layers", self.prune.ignored_layers),
            ("prune.layer_ratios", self.prune.layer_ratios),
        ):
            for name in names:
                if name not in module_names:
                    raise ConfigError(
                        f"unknown layer {name!r} (run 'autocl layers --workload NAME' to list them)",
                        file=self.source,
                        field=field,
                    )

    def suggest(self, trial: optuna.Trial, layer_names: list[str]) -> CompressionConfig:
        """Sample one configuration.

        Parameter names: ``prune.ratio``, ``distill.temperature``, ``bits.<layer>``,
        ``quant.calibration``, ... as stored in the study. Knobs that cannot matter for the sampled
        configuration (calibration without int8 layers, block size without int4 layers) are not sampled.

        Args:
            trial: The Optuna trial to sample with.
            layer_names: The model's quantizable layers.

        Returns:
            The sampled ``CompressionConfig``.
        """
        p = self.prune
        ratio = float(_suggest(trial, "prune.ratio", p.ratio))
        prune = PruneConfig(
            ratio=round(ratio, 6),
            importance=cast(
                'Literal["l1", "l2", "taylor"]', trial.suggest_categorical("prune.importance", p.importance)
            ),
            scope=_pick(trial, "prune.scope", p.scope),
            head_ratio=None
            if p.head_ratio is None
            else round(float(_suggest(trial, "prune.head_ratio", p.head_ratio)), 6),
            layer_ratios={
                n: round(float(_suggest(trial, f"prune.ratio.{n}", k)), 6) for n, k in p.layer_ratios.items()
            },
            unstructured=round(float(_suggest(trial, "prune.unstructured", p.unstructured)), 6),
            ignored_layers=tuple(p.ignored_layers),
            round_to=p.round_to,
            **_structure_knobs(trial, p),
        )
        d = self.distill
        distill = DistillConfig(
            temperature=float(_suggest(trial, "distill.temperature", d.temperature)),
            alpha=float(_suggest(trial, "distill.alpha", d.alpha)),
            steps=int(_suggest(trial, "distill.steps", d.steps, integer=True)),
            lr=float(_suggest(trial, "distill.lr", d.lr)),
            batch_size=d.batch_size,
            schedule=_pick(trial, "distill.schedule", d.schedule),
            warmup_steps=d.warmup_steps,
            feature_weight=float(_suggest(trial, "distill.feature_weight", d.feature_weight)),
        )
        if d.fidelity is not None:
            distill = self.at_rung(distill, 0)
        layers = self._suggest_layers(trial, layer_names)
        q = self.quant
        chosen = set(layers.values()) | ({q.default} if len(layers) < len(layer_names) else set())
        return CompressionConfig(
            prune=prune,
            distill=distill,
            quant=QuantConfig(
                default=q.default,
                layers=cast("dict[str, Precision]", layers),
                calibration_samples=int(
                    _suggest(trial, "quant.calibration_samples", q.calibration_samples, integer=True)
                ),
                calibration=_pick(trial, "quant.calibration", q.calibration) if "int8" in chosen else q.calibration[0],
                int4_block_size=_pick(trial, "quant.int4_block_size", q.int4_block_size)
                if "int4" in chosen
                else q.int4_block_size[0],
                fuse_first=_pick(trial, "quant.fuse_first", q.fuse_first) if chosen - {"fp32"} else False,
                qat=_pick(trial, "quant.qat", q.qat) if "int8" in chosen else False,
            ),
            **self._suggest_techniques(trial),
        )

    def at_rung(self, distill: DistillConfig, rung: int) -> DistillConfig:
        """``distill`` at rung ``rung`` of the space's fidelity ladder (``distill.fidelity``).

        The steps are the rung's (cumulative), the schedule spans the last rung (so a student
        promoted from one rung to the next resumes on the same schedule), without early stop.

        Args:
            distill: A trial's distillation settings.
            rung: The rung's index.

        Returns:
            The settings at that rung.

        Raises:
            ConfigError: The space has no ladder, or no such rung.
        """
        f = self.distill.fidelity
        if f is None or not 0 <= rung < len(f.rungs):
            raise ConfigError(
                f"no rung {rung} in the fidelity ladder {f.rungs if f else None}",
                file=self.source,
                field="distill.fidelity.rungs",
            )
        return distill.model_copy(update={"steps": f.rungs[rung], "ladder_steps": f.rungs[-1], "early_stop": False})

    def polished(self, cfg: CompressionConfig, n_train: int) -> CompressionConfig:
        """``cfg`` with the long distillation of :class:`PolishSpace`.

        That is ``epochs`` passes over the ``n_train`` training rows (capped at ``max_steps``), linear
        warm-up then cosine decay, early stop on held-out rows. Temperature, alpha and feature weight
        stay the trial's own.

        Args:
            cfg: A trial's configuration.
            n_train: The number of training rows.

        Returns:
            The polished configuration.
        """
        pol, d = self.distill.polish, cfg.distill
        steps = max(1, min(pol.max_steps, math.ceil(pol.epochs * n_train / d.batch_size)))
        distill = d.model_copy(
            update={
                "steps": steps,
                "lr": pol.lr or d.lr,
                "schedule": "cosine",
                "warmup_steps": int(pol.warmup * steps),
                "early_stop": pol.early_stop,
            }
        )
        return cfg.model_copy(update={"distill": distill})

    def uniform_precisions(self, layer_names: list[str]) -> list[str]:
        """The model-wide precisions of the fallback encoding.

        Args:
            layer_names: The model's quantizable layers.

        Returns:
            The space's precisions that some layer can take (at least ``["fp32"]``).
        """
        choices = self.layer_choices(layer_names)
        return [p for p in self.quant.precisions if any(p in c for c in choices.values())] or ["fp32"]

    def _suggest_layers(self, trial: optuna.Trial, layer_names: list[str]) -> dict[str, str]:
        choices = self.layer_choices(layer_names)
        if self.quant.encoding == "per_layer":
            return {
                name: c[0] if len(c) == 1 else trial.suggest_categorical(f"bits.{name}", c)
                for name, c in choices.items()
            }
        fb = self.quant.fallback
        model_wide = _pick(trial, "quant.precision", self.uniform_precisions(layer_names))
        layers = {name: _take(model_wide, c, fb.precisions) for name, c in choices.items()}
        options = [p for p in fb.precisions if p != model_wide and any(p in c for c in choices.values())]
        at_default = [n for n in self.ranking(model_wide, list(choices)) if layers.get(n) == model_wide]
        most = min(fb.max_layers, len(at_default))
        if not options or most == 0:
            return layers
        k = trial.suggest_int("quant.fallbacks", 0, most)
        if k:
            to = _pick(trial, "quant.fallback_precision", options)
            for name in [n for n in at_default if to in choices[n]][:k]:
                layers[name] = to
        return layers


def _structure_knobs(trial: optuna.Trial, p: PruneSpace) -> dict:
    """Depth pruning and low-rank factorization knobs of one trial (``prune.depth``, ``prune.rank_ratio``, ...)."""
    depth = round(float(_suggest(trial, "prune.depth", p.depth)), 6)
    return {
        "depth": depth,
        "depth_criterion": _pick(trial, "prune.depth_criterion", p.depth_criterion)
        if depth > 0
        else p.depth_criterion[0],
        "rank_ratio": round(float(_suggest(trial, "prune.rank_ratio", p.rank_ratio)), 6),
        "layer_rank_ratios": {
            n: round(float(_suggest(trial, f"prune.rank_ratio.{n}", k)), 6) for n, k in p.layer_rank_ratios.items()
        },
    }


def _take(precision: str, choices: list[str], fallbacks: Sequence[str]) -> str:
    """``precision`` where the layer can take it, else its first fallback it can take, else fp32."""
    if precision in choices:
        return precision
    for p in (*fallbacks, "fp32"):
        if p in choices:
            return p
    return choices[0]


def load_space(path: str | Path) -> SearchSpace:
    """Load and validate a search-space YAML file.

    Args:
        path: The YAML file.

    Returns:
        The search space, with ``source`` set to ``path``.

    Raises:
        ConfigError: The file cannot be read or is not a valid search space; the error names the file
            and the field.
    """
    space = load_yaml_model(path, SearchSpace)
    for p in space.quant.precisions:
        if p not in PRECISIONS:  # pragma: no cover - pydantic's Literal already refuses these
            raise ConfigError(f"unknown precision {p!r}", file=str(path), field="quant.precisions")
    return space.model_copy(update={"source": str(path)})
