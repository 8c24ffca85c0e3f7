"""The ``Technique`` protocol and the ordered registry the build path walks.

A technique is one file: its pydantic config (one trial's values, defaults meaning "off"), its
space (the knobs and their bounds), how a trial samples it, how it changes the student, what enters
the student cache key, and the notes, legend and model-card line it shows. The search space, the
cache key, the study record's notes, the front's legend and the model card are derived from the
registry (:func:`techniques`), so adding a technique edits nothing else.

The registry holds, in order of ``(phase, order, name)``:

* every module of the ``autocl.techniques`` package not starting with ``_`` that defines
  ``TECHNIQUE`` (the built-ins: a new one is a new file);
* every object registered by an installed package under the entry-point group
  ``autocl.techniques`` (``ENTRY_POINT_GROUP``): a ``Technique``, or a class making one;
* every technique passed to :func:`register` in this process.
"""

from __future__ import annotations

import abc
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args, runtime_checkable

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from autocl.errors import ConfigError

if TYPE_CHECKING:
    import optuna
    import torch

    from autocl.config import CompressionConfig
    from autocl.workloads import Workload

ENTRY_POINT_GROUP = "autocl.techniques"
Phase = Literal["structure", "train"]
PHASES: tuple[str, ...] = get_args(Phase)
"""``structure``: changes the architecture (applied again when a student is rebuilt from its
weights); ``train``: changes the weights of the built student before distillation and holds the
change through it (:class:`Hold`)."""


@dataclass
class BuildContext:
    """What a technique's ``apply`` may read, and where it records what it did.

    Attributes:
        config: The whole configuration being built.
        workload: The workload whose teacher is compressed.
        layers: The workload's quantizable layers (Linear/Conv/embedding names).
        ignored_layers: Layers never touched (the workload's and ``prune.ignored_layers``).
        precisions: Each quantizable layer's precision in the artifact (QAT reads its int8 layers).
        facts: Set what the technique did here (JSON-able); it is stored with the student
            (``Student.structure[name]``) and shown in the trial's details.
    """

    config: CompressionConfig
    workload: Workload
    layers: list[str]
    ignored_layers: tuple[str, ...] = ()
    precisions: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] | None = None


@dataclass(frozen=True)
class Hold:
    """How a ``train`` technique keeps its change through distillation.

    Attributes:
        step: Called after every optimizer step with ``(step, total)`` (e.g. zero masked weights again).
        end: Called once after distillation (or right away when the student is not distilled).
    """

    step: Callable[[int, int], None] | None = None
    end: Callable[[], None] | None = None


@runtime_checkable
class Technique(Protocol):
    """One compression technique (see the module docstring). :class:`BaseTechnique` implements
    everything but ``apply`` generically from ``config_type`` and ``space_type``."""

    name: str
    """Its section in search spaces and configurations (``techniques.<name>``) and the prefix of its
    Optuna parameters (``<name>.<knob>``)."""
    phase: Phase
    order: int
    """Its place within its phase (lower first)."""
    config_type: type[BaseModel]
    """One trial's values; the defaults mean "off"."""
    space_type: type[BaseModel]
    """The knobs: each field a fixed value, a list of choices or a ``Range``; the defaults mean "off"."""
    legend: str
    """What its notes mean, appended to the front table's legend ("" for none)."""

    def suggest(self, trial: optuna.Trial, space: BaseModel) -> BaseModel: ...

    def is_on(self, config: BaseModel) -> bool: ...

    def apply(self, student: torch.nn.Module, config: BaseModel, context: BuildContext) -> Hold | None: ...

    def cache_key(self, config: BaseModel) -> dict[str, Any]: ...

    def notes(self, config: BaseModel) -> list[str]: ...

    def card(self, config: BaseModel) -> str: ...

    def recipe_params(self, space: BaseModel) -> dict[str, Any]: ...


class BaseTechnique(abc.ABC):
    """Generic parts of a technique: a subclass sets the class attributes and writes ``apply``.

    ``suggest`` samples each field of ``space_type`` as the parameter ``<name>.<field>`` into the
    field of the same name of ``config_type``; ``is_on`` is "differs from the defaults"; the cache
    key is the whole config; the by-hand recipes pin every knob at the config's default.
    """

    name: str = ""
    phase: Phase = "train"
    order: int = 100
    config_type: type[BaseModel]
    space_type: type[BaseModel]
    legend: str = ""
    section: str | None = None
    """A built-in whose config predates the registry keeps its own field of ``CompressionConfig``
    and ``SearchSpace`` (``cluster``), so stored configs and spaces load unchanged; None (every
    plug-in): ``techniques.<name>``."""
    key_name: str | None = None
    """Likewise, its entry in the student key (``c``, ``q``), so keys of cached students stay; an entry
    already there (``p``: low rank's fields are keyed with the prune section) is left; None: ``t.<name>``."""
    own_section: bool = True
    """False for a built-in whose knobs sit in a section shared with others (low rank in ``prune``, QAT in
    ``quant``): that section samples them (where they interleave with the others), not ``suggest``."""

    def suggest(self, trial: optuna.Trial, space: BaseModel) -> BaseModel:
        from autocl.space._knobs import suggest_knob

        values = {}
        fields = self.config_type.model_fields
        for knob in type(space).model_fields:  # a knob of the space is the config's field of the same name
            integer = knob in fields and fields[knob].annotation is int
            values[knob] = suggest_knob(trial, f"{self.name}.{knob}", getattr(space, knob), integer=integer)
        return self.config_type(**values)

    def is_on(self, config: BaseModel) -> bool:
        return config != self.config_type()

    @abc.abstractmethod
    def apply(self, student: torch.nn.Module, config: BaseModel, context: BuildContext) -> Hold | None:
        """Change ``student`` as ``config`` says (each technique writes its own); a subclass without it
        cannot be instantiated, so a plug-in that forgot it fails when it loads, not inside a trial."""

    def cache_key(self, config: BaseModel) -> dict[str, Any]:
        return config.model_dump(mode="json")

    def notes(self, config: BaseModel) -> list[str]:
        return []

    def card(self, config: BaseModel) -> str:
        return f"{self.name}: " + ", ".join(f"{k} {v}" for k, v in config.model_dump(mode="json").items())

    def recipe_params(self, space: BaseModel) -> dict[str, Any]:
        from autocl.space._knobs import Range

        off = self.config_type()
        out = {}
        for knob in type(space).model_fields:
            value, plain = getattr(space, knob), getattr(off, knob, None)
            if isinstance(value, list) and len(value) > 1 and plain in value:
                out[f"{self.name}.{knob}"] = plain
            elif isinstance(value, Range) and plain is not None and value.low <= plain <= value.high:
                out[f"{self.name}.{knob}"] = plain
        return out


_registered: dict[str, Technique] = {}
_cache: tuple[Technique, ...] | None = None


def _check(obj: Any, origin: str) -> Technique:
    if isinstance(obj, type):
        obj = obj()
    missing = [a for a in ("name", "phase", "config_type", "space_type", "apply", "suggest") if not hasattr(obj, a)]
    if missing or not isinstance(obj, Technique):
        raise ConfigError(
            f"{origin} is not a technique (missing {', '.join(missing) or 'part of the Technique protocol'}): "
            "subclass autocl.techniques.BaseTechnique",
            field=ENTRY_POINT_GROUP,
        )
    if obj.phase not in PHASES:
        raise ConfigError(f"{origin}: phase {obj.phase!r} is not one of {', '.join(PHASES)}", field=ENTRY_POINT_GROUP)
    return obj


def _discover() -> list[Technique]:
    found: list[Technique] = []
    package = importlib.import_module("autocl.techniques")
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"autocl.techniques.{info.name}")
        if hasattr(module, "TECHNIQUE"):
            found.append(_check(module.TECHNIQUE, f"autocl.techniques.{info.name}.TECHNIQUE"))
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plug-in is named, not a traceback
            raise ConfigError(
                f"technique {ep.name!r} ({ep.value}) cannot be loaded: {type(exc).__name__}: {exc}",
                field=ENTRY_POINT_GROUP,
            ) from None
        found.append(_check(obj, f"technique {ep.name!r} ({ep.value})"))
    return found


def techniques() -> tuple[Technique, ...]:
    """Every technique, in the order the build path applies them (see the module docstring).

    Raises:
        ConfigError: A plug-in cannot be loaded, is not a technique, or two share a name.
    """
    global _cache
    if _cache is None:
        seen: dict[str, Technique] = {}
        for t in [*_discover(), *_registered.values()]:
            if t.name in seen and seen[t.name] is not t:
                raise ConfigError(f"two techniques are named {t.name!r}; rename one", field=ENTRY_POINT_GROUP)
            seen[t.name] = t
        _cache = tuple(sorted(seen.values(), key=lambda t: (PHASES.index(t.phase), t.order, t.name)))
    return _cache


def technique(name: str, *, file: str | None = None, field: str | None = "techniques") -> Technique:
    """The technique called ``name``.

    Raises:
        ConfigError: No technique has that name (the error lists the known ones).
    """
    for t in techniques():
        if t.name == name:
            return t
    known = ", ".join(t.name for t in techniques()) or "none"
    raise ConfigError(
        f"unknown technique {name!r}; the known techniques are: {known} (a plug-in registers under the "
        f"entry-point group '{ENTRY_POINT_GROUP}')",
        file=file,
        field=field,
    )


def register(obj: Any) -> Technique:
    """Add a technique in this process (tests, notebooks); installed packages use the entry point.

    Returns:
        The technique.
    """
    global _cache
    t = _check(obj, repr(obj))
    _registered[t.name] = t
    _cache = None
    return t


def unregister(name: str) -> None:
    """Remove a technique added with :func:`register`."""
    global _cache
    _registered.pop(name, None)
    _cache = None


def validate_sections(value: Mapping[str, Any], kind: Literal["config", "space"]) -> dict[str, BaseModel]:
    """``{technique name: its config (or space)}`` validated by each technique's own model.

    Raises:
        PydanticCustomError: An unknown technique, or a value its model refuses (the message names
            ``<name>.<field>``); pydantic turns it into an error on the ``techniques`` field.
    """
    out: dict[str, BaseModel] = {}
    for name, section in value.items():
        try:
            t = technique(name, field=None)
        except ConfigError as exc:
            raise PydanticCustomError("technique", "{detail}", {"detail": str(exc)}) from None
        model = t.config_type if kind == "config" else t.space_type
        if isinstance(section, model):
            out[name] = section
            continue
        try:
            out[name] = model.model_validate(section if section is not None else {})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in (name, *err.get("loc", ())))
            msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
            if err.get("type") == "extra_forbidden":
                msg = "unknown field (check its spelling against the technique's documented fields)"
            raise PydanticCustomError("technique", "{detail}", {"detail": f"{where}: {msg}"}) from None
    return out


__all__ = [
    "ENTRY_POINT_GROUP",
    "PHASES",
    "BaseTechnique",
    "BuildContext",
    "Hold",
    "Phase",
    "Technique",
    "register",
    "technique",
    "techniques",
    "unregister",
    "validate_sections",
]
