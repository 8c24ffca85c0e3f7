"""Search spaces: YAML declarations of the knobs, and ``suggest(trial) -> CompressionConfig``.

This is the one module that knows both Optuna trials and autocl's configuration records. Every
numeric knob is written as a fixed number, a list of choices, or a range ``{low, high, step, log}``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal, Union

import optuna
from pydantic import BaseModel, ConfigDict, Field, model_validator

from autocl.config import PRECISIONS, CompressionConfig, DistillConfig, Precision, PruneConfig, QuantConfig, load_yaml_model
from autocl.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Strict):
    """A numeric range sampled by Optuna; ``step`` makes it discrete (and student caching likelier)."""

    low: float
    high: float
    step: float | None = None
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> "Range":
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        if self.step is not None and self.log:
            raise ValueError("step and log cannot be combined (Optuna samples one or the other)")
        if self.step is not None and self.step <= 0:
            raise ValueError("step must be positive")
        return self


Knob = Union[float, list[float], Range]


def _suggest(trial: optuna.Trial, name: str, knob: Knob, *, integer: bool = False) -> float:
    if isinstance(knob, Range):
        if integer:
            return trial.suggest_int(name, int(knob.low), int(knob.high), step=int(knob.step or 1), log=knob.log)
        return trial.suggest_float(name, knob.low, knob.high, step=knob.step, log=knob.log)
    if isinstance(knob, list):
        return trial.suggest_categorical(name, knob)
    return knob


class PruneSpace(_Strict):
    ratio: Knob = Field(Range(low=0.0, high=0.5, step=0.1), description="channel pruning ratio")
    importance: list[Literal["l1", "l2"]] = Field(["l2"], min_length=1)
    ignored_layers: list[str] = Field(default_factory=list, description="layers never pruned")
    round_to: int | None = Field(8, ge=1, description="channel counts kept multiples of this")


class DistillSpace(_Strict):
    temperature: Knob = Range(low=1.0, high=8.0, step=1.0)
    alpha: Knob = Range(low=0.1, high=0.9, step=0.2)
    steps: Knob = 60
    lr: Knob = 1e-3
    batch_size: int = Field(64, ge=1)


class QuantSpace(_Strict):
    precisions: list[Precision] = Field(["fp32", "int8"], min_length=1,
                                        description="choices for every quantizable layer")
    layers: Literal["all"] | list[str] | dict[str, list[Precision]] = Field(
        "all", description="'all', a list of layers to search (others take the default), or layer -> choices")
    default: Precision = "fp32"
    calibration_samples: int = Field(128, ge=1)


class SearchSpace(_Strict):
    """A validated search space; ``bind(layer_names)`` checks it against a real model."""

    name: str = "custom"
    description: str = ""
    prune: PruneSpace = Field(default_factory=PruneSpace)
    distill: DistillSpace = Field(default_factory=DistillSpace)
    quant: QuantSpace = Field(default_factory=QuantSpace)
    source: str = Field("<space>", exclude=True)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]

    def layer_choices(self, layer_names: list[str]) -> dict[str, list[str]]:
        """Per quantizable layer, the precisions the search may pick; unknown names are errors."""
        q = self.quant
        if q.layers == "all":
            return {name: list(q.precisions) for name in layer_names}
        wanted = q.layers if isinstance(q.layers, dict) else {n: list(q.precisions) for n in q.layers}
        for name in wanted:
            if name not in layer_names:
                raise ConfigError(
                    f"unknown layer {name!r}; the model's quantizable layers are: {', '.join(layer_names)}",
                    file=self.source, field=f"quant.layers.{name}",
                )
        for name, choices in wanted.items():
            if not choices:
                raise ConfigError("needs at least one precision", file=self.source, field=f"quant.layers.{name}")
        return {name: list(wanted[name]) for name in layer_names if name in wanted}

    def check_against(self, layer_names: list[str], module_names: set[str]) -> None:
        self.layer_choices(layer_names)
        for name in self.prune.ignored_layers:
            if name not in module_names:
                raise ConfigError(f"unknown layer {name!r} (run 'autocl layers --workload NAME' to list them)",
                                  file=self.source, field="prune.ignored_layers")

    def suggest(self, trial: optuna.Trial, layer_names: list[str]) -> CompressionConfig:
        """Sample one configuration. Parameter names: ``prune.ratio``, ``distill.temperature``,
        ``bits.<layer>``, ... as stored in the study."""
        ratio = float(_suggest(trial, "prune.ratio", self.prune.ratio))
        importance = trial.suggest_categorical("prune.importance", self.prune.importance)
        distill = DistillConfig(
            temperature=float(_suggest(trial, "distill.temperature", self.distill.temperature)),
            alpha=float(_suggest(trial, "distill.alpha", self.distill.alpha)),
            steps=int(_suggest(trial, "distill.steps", self.distill.steps, integer=True)),
            lr=float(_suggest(trial, "distill.lr", self.distill.lr)),
            batch_size=self.distill.batch_size,
        )
        layers = {}
        for name, choices in self.layer_choices(layer_names).items():
            layers[name] = choices[0] if len(choices) == 1 else trial.suggest_categorical(f"bits.{name}", choices)
        return CompressionConfig(
            prune=PruneConfig(ratio=round(ratio, 6), importance=importance, ignored_layers=tuple(self.prune.ignored_layers),
                              round_to=self.prune.round_to),
            distill=distill,
            quant=QuantConfig(default=self.quant.default, layers=layers,
                              calibration_samples=self.quant.calibration_samples),
        )


def load_space(path: str | Path) -> SearchSpace:
    """Load and validate a search-space YAML file; errors name the file and the field."""
    space = load_yaml_model(path, SearchSpace)
    for p in space.quant.precisions:
        if p not in PRECISIONS:  # pragma: no cover - pydantic's Literal already refuses these
            raise ConfigError(f"unknown precision {p!r}", file=str(path), field="quant.precisions")
    return space.model_copy(update={"source": str(path)})
