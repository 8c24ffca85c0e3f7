"""Workloads: the model, its data and its metric.

``load_workload(name)`` accepts a built-in name (``mnist``, ``digits``, ``minilm``, ``vit``), the name of a
workload registered by an installed package under the entry-point group ``autocl.workloads``, or a
``package.module:function`` that returns a :class:`Workload`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points

from autocl.errors import WorkloadError
from autocl.workloads._base import Inputs, Workload, accuracy, input_tuple, n_samples, take, validate_workload

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
            ``package.module:function``, a function taking no arguments that returns a ``Workload``.

    Returns:
        The workload.

    Raises:
        WorkloadError: The spec is unknown, its module or function cannot be found, the function
            raises, or it returns something other than a complete ``Workload``.
    """
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
    return w


__all__ = [
    "BUILTIN",
    "DEFAULT_WORKLOAD",
    "ENTRY_POINT_GROUP",
    "Inputs",
    "Workload",
    "accuracy",
    "input_tuple",
    "load_workload",
    "n_samples",
    "registered_workloads",
    "take",
    "validate_workload",
]
