"""Workloads: the model, its data and its metric.

``load_workload(name)`` accepts a built-in name (``mnist``, ``digits``, ``minilm``, ``vit``), the name of a
workload registered by an installed package under the entry-point group ``autocl.workloads``, or a
``package.module:function`` that returns a :class:`Workload`. Options follow a ``?``:
``mnist?train_limit=512`` keeps 512 training rows (:func:`limit_train`), on any workload.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points

from autocl.errors import WorkloadError
from autocl.workloads._base import (
    Inputs,
    Workload,
    accuracy,
    input_tuple,
    limit_train,
    n_samples,
    take,
    validate_workload,
)

BUILTIN: dict[str, str] = {
    "mnist": "autocl.workloads._digits:mnist",
    "digits": "autocl.workloads._digits:digits",
    "minilm": "autocl.workloads._minilm:minilm",
    "vit": "autocl.workloads._vit:vit",
}
DEFAULT_WORKLOAD = "mnist"
ENTRY_POINT_GROUP = "autocl.workloads"


def registered_workloads() -> dict[str, str]:
    """Workloads that installed packages register.

    They are found under the entry-point group ``autocl.workloads`` (``ENTRY_POINT_GROUP``).

    Returns:
        ``{entry-point name: "module:function"}``.
    """
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _resolve(spec: str) -> Callable[[], object]:
    module_name, _, attr = spec.partition(":")
    if not attr:
        others = registered_workloads()
        extra = f", registered ({', '.join(sorted(others))})" if others else ""
        raise WorkloadError(
            f"unknown workload {spec!r}: use a built-in ({', '.join(BUILTIN)}){extra}, or 'package.module:function' "
            f"(or register one under the entry-point group '{ENTRY_POINT_GROUP}')"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise WorkloadError(f"workload {spec!r}: cannot import module {module_name!r} ({exc})") from None
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        raise WorkloadError(f"workload {spec!r}: module {module_name!r} has no function {attr!r}")
    return fn


def load_workload(spec: str) -> Workload:
    """Build the workload named by ``spec`` and check it is complete.

    Args:
        spec: A built-in name (``BUILTIN``), a registered name (see :func:`registered_workloads`) or
            ``package.module:function``, a function taking no arguments that returns a ``Workload``;
            optionally followed by ``?train_limit=N`` (see :func:`with_options`).

    Returns:
        The workload.

    Raises:
        WorkloadError: The spec is unknown, its module or function cannot be found, the function
            raises, or it returns something other than a complete ``Workload``.
    """
    spec, _, options = spec.partition("?")
    train_limit = _train_limit(spec, options)
    target = BUILTIN.get(spec) or (registered_workloads().get(spec) if ":" not in spec else None) or spec
    fn = _resolve(target)
    try:
        w = fn()
    except WorkloadError:
        raise
    except Exception as exc:  # a user's factory failing is a workload problem, reported as such
        raise WorkloadError(f"workload {spec!r}: its function raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(w, Workload):
        validate_workload(w, source=f"workload {spec!r}")
        raise WorkloadError(
            f"workload {spec!r}: the function must return autocl.workloads.Workload, got {type(w).__name__}"
        )
    return w if train_limit is None else limit_train(w, train_limit)


def with_options(spec: str, *, train_limit: int | None = None) -> str:
    """``spec`` with workload options appended (what :func:`load_workload` reads back).

    Args:
        spec: A workload spec.
        train_limit: Keep only this many training rows (None: all).

    Returns:
        ``spec``, or ``spec?train_limit=N``.
    """
    return spec if train_limit is None else f"{spec.partition('?')[0]}?train_limit={train_limit}"


def _train_limit(spec: str, options: str) -> int | None:
    """The ``train_limit`` option of a spec's ``?options``; anything else is refused."""
    if not options:
        return None
    key, _, value = options.partition("=")
    if key != "train_limit" or not value.isdigit() or int(value) < 2:
        raise WorkloadError(
            f"workload {spec!r}: cannot read option {options!r}; the one option is train_limit=N (N >= 2 training rows)"
        )
    return int(value)


__all__ = [
    "BUILTIN",
    "DEFAULT_WORKLOAD",
    "ENTRY_POINT_GROUP",
    "Inputs",
    "Workload",
    "accuracy",
    "input_tuple",
    "limit_train",
    "load_workload",
    "n_samples",
    "registered_workloads",
    "take",
    "validate_workload",
    "with_options",
]
