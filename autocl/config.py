"""Validated, serializable records of one compression configuration, and YAML loading.

Configuration is data: the search space samples a :class:`CompressionConfig`, the pipeline
receives it, the study stores it (``to_dict``) and an exported ``config.yaml`` rebuilds it.
Every file autocl reads goes through :func:`load_yaml_model`, so a bad file fails once, before
any work starts, with an error naming the file and the field.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer

from autocl._yaml import parse_yaml
from autocl.errors import ConfigError

if TYPE_CHECKING:
    from autocl.techniques import Technique

Precision = Literal["fp32", "fp16", "int8", "int8_dynamic", "int4"]
"""Per-layer precisions, each a real kernel in the artifact:

* ``fp32``: untouched.
* ``fp16``: float16 weights, the layer computes in float16 (Cast in, Cast out). Refused on execution
  providers that have no float16 kernel for the op (ORT's CPU provider casts back to float32).
* ``int8``: static QDQ (U8S8): per-channel int8 weights, uint8 activations calibrated on training
  data; 7-bit weights (``reduce_range``) only on CPUs without VNNI, where 8-bit products saturate.
* ``int8_dynamic``: per-channel int8 weights, activations quantized at run time
  (MatMulInteger/ConvInteger): for MatMul-heavy models whose activations vary.
* ``int4``: 4-bit weight-only blocks (``MatMulNBits``), MatMul/Gemm layers only; block size is
  ``QuantConfig.int4_block_size``.
"""

PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8", "int8_dynamic", "int4")
PRECISION_CODES: dict[str, str] = {"fp32": "f", "fp16": "h", "int8": "8", "int8_dynamic": "d", "int4": "4"}
"""One character per precision, used by ``QuantConfig.compact`` (the "bits per layer" column); the
views read the characters back through it."""
BIT_WIDTHS: dict[str, int] = {"fp32": 32, "fp16": 16, "int8": 8, "int8_dynamic": 8, "int4": 4}
"""Bits per weight of each precision, as the per-layer maps show it."""

CalibrationMethod = Literal["minmax", "entropy", "percentile"]
CONFIG_VERSION = 1
# Version 1 is still current: every field added since has a default, so older dicts load unchanged.


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PruneConfig(_Record):
    """Structured pruning (channels of convolutions, FFN neurons and attention heads of transformers),
    optionally followed by unstructured magnitude sparsity.

    ``ratio`` is the fraction removed from each prunable group (``scope="local"``) or from the whole
    model, ranked globally (``scope="global"``); ``layer_ratios`` overrides it per layer; ``head_ratio``
    is the fraction of attention heads removed (default: ``ratio``). ``unstructured`` zeroes that
    fraction of the remaining weights by magnitude, held through distillation: the artifact
    compresses smaller, it does not run faster, and it is reported that way.
    """

    ratio: float = Field(default=0.0, ge=0.0, le=0.9, description="fraction of channels/neurons removed per layer")
    importance: Literal["l1", "l2", "taylor"] = Field(
        default="l2",
        description=(
            "group importance: weight magnitude (l1, l2), or taylor (|weight x gradient| of the workload's loss)"
        ),
    )
    scope: Literal["local", "global"] = Field(
        default="local", description="same ratio per layer, or ranked across layers"
    )
    layer_ratios: dict[str, float] = Field(default_factory=dict, description="per-layer ratio overrides")
    head_ratio: float | None = Field(default=None, ge=0.0, le=0.9, description="fraction of attention heads removed")
    unstructured: float = Field(default=0.0, ge=0.0, le=0.95, description="magnitude sparsity of the remaining weights")
    ignored_layers: tuple[str, ...] = Field(default=(), description="layers never pruned (e.g. the classifier)")
    round_to: int | None = Field(
        default=8,
        ge=1,
        le=256,
        description=(
            "keep channel counts multiples of this: ORT's CPU conv kernels work in blocks of 8 channels, and "
            "unaligned counts measured slower than the unpruned model here"
        ),
    )
    depth: float = Field(
        default=0.0,
        ge=0.0,
        le=1000.0,
        description=(
            "transformer layers / identity-shortcut residual blocks removed: a fraction below 1, a count from 1"
        ),
    )
    depth_criterion: Literal["uniform", "importance"] = Field(
        default="uniform",
        description=(
            "uniform: keep evenly spaced blocks (first and last kept); importance: greedily remove the block "
            "whose removal raises the workload's loss least"
        ),
    )
    rank_ratio: float = Field(
        default=1.0,
        gt=0.0,
        le=1.0,
        description=(
            "low-rank factorization (truncated SVD) of Linear and 1x1-conv weights at this fraction of full rank; 1: off"
        ),
    )
    layer_rank_ratios: dict[str, float] = Field(default_factory=dict, description="per-layer rank ratio overrides")

    @field_validator("layer_rank_ratios")
    @classmethod
    def _rank_ratios_in_range(cls, v: dict[str, float]) -> dict[str, float]:
        for name, r in v.items():
            if not 0.0 < r <= 1.0:
                raise ValueError(f"rank ratio of layer {name!r} must be within (0, 1], got {r}")
        return v

    @property
    def is_lowrank(self) -> bool:
        return self.rank_ratio < 1.0 or any(r < 1.0 for r in self.layer_rank_ratios.values())

    @field_validator("layer_ratios")
    @classmethod
    def _ratios_in_range(cls, v: dict[str, float]) -> dict[str, float]:
        for name, r in v.items():
            if not 0.0 <= r <= 0.9:
                raise ValueError(f"ratio of layer {name!r} must be within [0, 0.9], got {r}")
        return v

    @property
    def is_structured(self) -> bool:
        return self.ratio > 0 or any(r > 0 for r in self.layer_ratios.values()) or bool(self.head_ratio)

    @property
    def changes_model(self) -> bool:
        return self.is_structured or self.unstructured > 0 or self.depth > 0 or self.is_lowrank


_DEPTH_LOWRANK_KNOBS = ("depth", "depth_criterion", "rank_ratio", "layer_rank_ratios")


class DistillConfig(_Record):
    """Knowledge distillation of the pruned student from the unpruned teacher.

    For classifiers: logit KD at ``temperature``, weighed by ``alpha`` against the hard labels. For
    embedding models: KL between the teacher's and the student's temperature-scaled in-batch
    similarity distributions, weighed by ``alpha`` against 1 - cosine to the teacher's embeddings.
    ``feature_weight`` adds intermediate-feature distillation on the workload's ``feature_layers``.
    """

    temperature: float = Field(default=4.0, gt=0.0, le=50.0, description="softmax temperature T of the KD loss")
    alpha: float = Field(
        default=0.5, ge=0.0, le=1.0, description="weight of the KD term; 1-alpha weighs the hard labels"
    )
    steps: int = Field(default=60, ge=0, le=100_000, description="optimizer steps of fine-tuning")
    lr: float = Field(default=1e-3, gt=0.0, le=1.0, description="AdamW learning rate")
    batch_size: int = Field(default=64, ge=1, le=65_536)
    schedule: Literal["cosine", "linear", "constant"] = Field(default="cosine", description="learning-rate decay")
    warmup_steps: int = Field(default=0, ge=0, le=100_000, description="linear warm-up steps before the schedule")
    feature_weight: float = Field(
        default=0.0, ge=0.0, le=100.0, description="weight of intermediate-feature distillation"
    )
    early_stop: bool = Field(
        default=False, description=("hold out a tenth of the training rows and keep the student that did best on them")
    )
    ladder_steps: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description=(
            "a rung of a fidelity ladder (distill.fidelity): the learning rate follows one schedule of this many "
            "steps across the rungs, so a promoted student resumes where it stopped; a tenth of the training "
            "rows is held out to score each rung"
        ),
    )


class QuantConfig(_Record):
    """Per-layer precision: one mapping from module name to precision, with a default."""

    default: Precision = "fp32"
    layers: dict[str, Precision] = Field(default_factory=dict)
    calibration_samples: int = Field(
        default=128, ge=1, le=100_000, description="training rows that calibrate int8 activations"
    )
    calibration: CalibrationMethod = Field(default="minmax", description="activation range estimator of static int8")
    int4_block_size: int = Field(
        default=32, ge=16, le=1024, description="weights per int4 scale (MatMulNBits block_size)"
    )
    reduce_range: bool | None = Field(
        default=None,
        description=("7-bit int8 weights; None: only on CPUs without int8 dot products (VNNI/AMX/dotprod)"),
    )
    fuse_first: bool = Field(
        default=False,
        description=(
            "apply onnxruntime's extended graph fusions (bias + GELU, scaled Q.K^T, ...) before quantizing, "
            "so the quantized graph keeps them: quantizing first splits the patterns they match"
        ),
    )
    qat: bool = Field(
        default=False,
        description=(
            "quantization-aware training: distill with the static int8 layers fake-quantized, export with the "
            "trained activation ranges (the student then depends on which layers are static int8)"
        ),
    )

    @field_validator("int4_block_size")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if v & (v - 1):
            raise ValueError(f"must be a power of two (16, 32, 64, 128, ...), got {v}")
        return v

    def qat_key(self) -> dict[str, Any] | None:
        """See :meth:`CompressionConfig.qat_key` (the one definition, read by the QAT technique too)."""
        if not self.qat or (self.default != "int8" and "int8" not in self.layers.values()):
            return None
        return {
            "default": self.default == "int8",
            "layers": {n: p == "int8" for n, p in sorted(self.layers.items())},
            "reduce_range": self.reduce_range,
        }

    def precision_of(self, layer: str) -> str:
        return self.layers.get(layer, self.default)

    def uses(self, precision: str, layer_names: list[str]) -> bool:
        return any(self.precision_of(n) == precision for n in layer_names)

    def compact(self, layer_names: list[str] | None = None) -> str:
        """One character per layer (see ``PRECISION_CODES``: f fp32, h fp16, 8 int8, d int8_dynamic,
        4 int4), in the given or stored order."""
        names = layer_names if layer_names is not None else list(self.layers)
        return "".join(PRECISION_CODES.get(self.precision_of(n), "?") for n in names)


class ClusterConfig(_Record):
    """Weight sharing: each quantizable layer's weight is clustered (1-D k-means) to ``clusters``
    shared values and fine-tuned with them held (``autocl.compress.cluster``). It shrinks the
    palettized size (``autocl.compress.size``), not the latency. 0 is off."""

    clusters: int = Field(default=0, ge=0, le=65_536, description="distinct weight values per layer (0: no clustering)")

    @field_validator("clusters")
    @classmethod
    def _at_least_two(cls, v: int) -> int:
        if v == 1:
            raise ValueError("one cluster would set every weight of a layer to one value; use 0 (off) or >= 2")
        return v


class CompressionConfig(_Record):
    """Everything one trial applies to the model: prune, then distill, then quantize."""

    prune: PruneConfig = Field(default_factory=PruneConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    quant: QuantConfig = Field(default_factory=QuantConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    techniques: dict[str, Any] = Field(
        default_factory=dict,
        description="technique name -> its config, for techniques of the registry (autocl.techniques)",
    )

    @field_validator("techniques", mode="before")
    @classmethod
    def _known_techniques(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        from autocl.techniques import validate_sections

        return validate_sections(value, "config")

    @model_serializer(mode="wrap")
    def _stable(self, handler):
        dumped = handler(self)
        if not dumped.get("techniques"):  # stored configs stay as they were before the registry
            dumped.pop("techniques", None)
        return dumped

    def technique_config(self, technique: Technique) -> BaseModel:
        """``technique``'s config in this configuration (its defaults, "off", when absent)."""
        section = getattr(technique, "section", None)
        if section is not None:
            return getattr(self, section)
        return self.techniques.get(technique.name) or technique.config_type()

    def techniques_on(self) -> list[tuple[Technique, BaseModel]]:
        """The registry's techniques this configuration turns on, in build order, with their configs."""
        from autocl.techniques import techniques

        out = []
        for t in techniques():
            conf = self.technique_config(t)
            if t.is_on(conf):
                out.append((t, conf))
        return out

    @property
    def changes_weights(self) -> bool:
        """The student differs from the teacher before quantization: the model changed (``PruneConfig.
        changes_model``) or a technique of the registry is on (clustering, N:M sparsity, ...)."""
        return self.prune.changes_model or bool(self.techniques_on())

    def qat_key(self) -> dict[str, Any] | None:
        """What a quantization-aware-trained student depends on: which layers are static int8 (the
        default and each named layer's int8-ness) and the weight range; None without QAT."""
        return self.quant.qat_key()

    @property
    def trains(self) -> bool:
        """The student is fine-tuned (distilled from the teacher): the model changed (``PruneConfig.
        changes_model``), a technique of the registry changed its weights (:attr:`changes_weights`), or
        its static int8 layers are quantization-aware trained. The one definition: the pipeline, the student cache and the study record read it."""
        return self.changes_weights or self.qat_key() is not None

    def student_key(self, workload_key: str) -> str:
        """Key of the pruned and distilled student: bit-widths do not change it, so trials that
        differ only in precision reuse one student; with QAT (:meth:`qat_key`) the static int8
        layers do, and so does weight clustering. Knobs left off leave the key as it was."""
        prune = self.prune.model_dump(mode="json")
        for knob in _DEPTH_LOWRANK_KNOBS:  # at their defaults, keys stay those of students cached before them
            if prune[knob] == PruneConfig.model_fields[knob].get_default(call_default_factory=True):
                del prune[knob]
        distill = self.distill.model_dump(mode="json")
        if distill["ladder_steps"] is None:  # off, keys stay those of students cached before the ladder
            del distill["ladder_steps"]
        record: dict[str, Any] = {"w": workload_key, "p": prune, "d": distill}
        if self.prune.head_ratio and (self.prune.ratio == 0 or 0 in self.prune.layer_ratios.values()):
            # students cached before heads were pruned without a width ratio kept every head
            record["heads_alone"] = 2
        for t, conf in self.techniques_on():
            key_name = getattr(t, "key_name", None)
            if key_name is None:  # plug-ins: absent when off, so keys of students cached before them stay
                record.setdefault("t", {})[t.name] = t.cache_key(conf)
            elif key_name not in record:  # "p": its fields are keyed with the prune section already
                record[key_name] = t.cache_key(conf)
        payload = json.dumps(record, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {"type": "autocl.CompressionConfig", "version": CONFIG_VERSION, **self.model_dump(mode="json")}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<config>") -> CompressionConfig:
        data = dict(data)
        kind = data.pop("type", "autocl.CompressionConfig")
        version = data.pop("version", CONFIG_VERSION)
        if kind != "autocl.CompressionConfig":
            raise ConfigError(f"expected type 'autocl.CompressionConfig', got {kind!r}", file=source, field="type")
        if version != CONFIG_VERSION:
            raise ConfigError(
                f"unsupported version {version!r}; this autocl reads version {CONFIG_VERSION}",
                file=source,
                field="version",
            )
        return validate_model(cls, data, source=source)


M = TypeVar("M", bound=BaseModel)


def _describe(err: Mapping[str, Any]) -> tuple[str, str]:
    field = ".".join(str(p) for p in err.get("loc", ())) or "<top level>"
    msg = err.get("msg", "invalid value")
    if err.get("type") == "extra_forbidden":
        msg = "unknown field (check its spelling against the documented fields)"
    elif "input" in err and err.get("type") not in ("missing", "technique"):  # a technique's names its value
        msg += f" (got {err['input']!r})"
    return field, msg


def validate_model(model_cls: type[M], data: Any, *, source: str, error: type[ConfigError] = ConfigError) -> M:
    """Validate ``data`` into ``model_cls``; the first problem becomes a ConfigError naming
    ``source`` and the dotted field path, the rest are listed after it."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        field, msg = _describe(errors[0])
        more = ""
        if len(errors) > 1:
            others = "; ".join(f"{f}: {m}" for f, m in (_describe(e) for e in errors[1:4]))
            more = f" (also: {others})"
        raise error(msg + more, file=source, field=field) from None


def load_yaml(path: str | Path, *, error: type[ConfigError] = ConfigError) -> Any:
    """Read a YAML file through :func:`autocl._yaml.parse_yaml` (bounded, finite numbers, encodable
    text), turning a missing file, undecodable bytes or a syntax error into a ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise error("file not found (give a path to an existing YAML file)", file=str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (byte {exc.start}): save the file as UTF-8", file=str(path)) from None
    return parse_yaml(text, str(path), error=error)


def load_yaml_model(path: str | Path, model_cls: type[M], *, error: type[ConfigError] = ConfigError) -> M:
    """Load and validate a YAML file into ``model_cls``; problems raise ``error`` (a ConfigError)."""
    data = load_yaml(path, error=error)
    if not isinstance(data, dict):
        raise error(f"expected a mapping at the top level, got {type(data).__name__}", file=str(path))
    return validate_model(model_cls, data, source=str(path), error=error)


__all__ = [
    "BIT_WIDTHS",
    "CONFIG_VERSION",
    "PRECISIONS",
    "PRECISION_CODES",
    "CalibrationMethod",
    "ClusterConfig",
    "CompressionConfig",
    "DistillConfig",
    "Precision",
    "PruneConfig",
    "QuantConfig",
    "load_yaml",
    "load_yaml_model",
    "validate_model",
]
