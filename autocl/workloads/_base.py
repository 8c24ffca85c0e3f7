"""The Workload: everything autocl needs to know about a user's model and task.

A workload is one object. Built-ins live beside this file; users bring theirs as a
``package.module:function`` returning a :class:`Workload` (see :func:`autocl.workloads.load_workload`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from autocl.errors import WorkloadError

MetricFn = Callable[[np.ndarray, np.ndarray], float]


def accuracy(outputs: np.ndarray, targets: np.ndarray) -> float:
    """Top-1 accuracy of class scores ``outputs`` [N, C] against integer ``targets`` [N]."""
    return float((outputs.argmax(axis=1) == targets).mean())


@dataclass
class Workload:
    """A trained model (the teacher), its data and its metric.

    ``train`` is used for distillation and calibration, ``validation`` for the metric. Inputs are
    float32 arrays whose first axis is the batch; ``example_input`` is one batch of size 1.
    """

    name: str
    model: nn.Module
    example_input: torch.Tensor
    train: tuple[np.ndarray, np.ndarray]
    validation: tuple[np.ndarray, np.ndarray]
    metric: MetricFn = accuracy
    metric_name: str = "accuracy"
    higher_is_better: bool = True
    ignored_layers: tuple[str, ...] = ()
    description: str = ""
    version: str = "1"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_workload(self)
        self.model.eval()

    @property
    def key(self) -> str:
        """Fingerprint of the teacher's weights and the data: caches and studies are keyed by it."""
        h = hashlib.sha256(f"{self.name}:{self.version}".encode())
        for name, tensor in sorted(self.model.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        for arr in (*self.train, *self.validation):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()[:16]

    def calibration_inputs(self, n: int) -> np.ndarray:
        return np.ascontiguousarray(self.train[0][:n], dtype=np.float32)

    def layer_names(self) -> list[str]:
        """The quantizable layers (Conv and Linear modules), in model order."""
        return [name for name, m in self.model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]


_REQUIRED = {
    "name": str,
    "model": nn.Module,
    "example_input": torch.Tensor,
    "train": tuple,
    "validation": tuple,
}


def validate_workload(w: object, *, source: str = "workload") -> None:
    """Raise a WorkloadError naming the first missing or mistyped part of ``w``."""
    for part, kind in _REQUIRED.items():
        value = getattr(w, part, None)
        if value is None:
            raise WorkloadError(f"{source}: missing '{part}' (expected {kind.__name__})")
        if not isinstance(value, kind):
            raise WorkloadError(f"{source}: '{part}' must be a {kind.__name__}, got {type(value).__name__}")
    for part in ("train", "validation"):
        value = getattr(w, part)
        if len(value) != 2 or len(value[0]) != len(value[1]) or len(value[0]) == 0:
            raise WorkloadError(
                f"{source}: '{part}' must be a non-empty (inputs, targets) pair of equal length"
            )
    if not callable(getattr(w, "metric", None)):
        raise WorkloadError(f"{source}: 'metric' must be a function (outputs, targets) -> float")
    known = {n for n, _ in w.model.named_modules()}  # type: ignore[attr-defined]
    for layer in getattr(w, "ignored_layers", ()):
        if layer not in known:
            raise WorkloadError(f"{source}: ignored layer {layer!r} is not a module of the model")
