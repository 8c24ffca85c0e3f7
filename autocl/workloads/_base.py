"""The Workload: everything autocl needs to know about a user's model and task.

A workload is one object. Built-ins live beside this file; users bring theirs as a
``package.module:function`` returning a :class:`Workload` (see :func:`autocl.workloads.load_workload`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Union

import numpy as np
import torch
from torch import nn

from autocl.errors import WorkloadError

MetricFn = Callable[[np.ndarray, np.ndarray], float]
Inputs = Union[np.ndarray, tuple[np.ndarray, ...]]
"""A model's inputs: one array, or a tuple of arrays in the order of ``Workload.input_names``
(the first axis of each is the batch)."""


def input_tuple(x: Inputs) -> tuple[np.ndarray, ...]:
    """The input arrays of ``x`` as a tuple.

    Args:
        x: One array, or a tuple or list of arrays.

    Returns:
        ``(x,)`` for one array, else ``tuple(x)``.
    """
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def take(x: Inputs, index) -> tuple[np.ndarray, ...]:
    """Rows ``index`` of every input array.

    Args:
        x: The inputs.
        index: A slice or an index array.

    Returns:
        The selected rows of each input array, as a tuple.
    """
    return tuple(a[index] for a in input_tuple(x))


def n_samples(x: Inputs) -> int:
    """The number of rows (the first axis) of the inputs.

    Args:
        x: The inputs.

    Returns:
        The length of the first input array.
    """
    return len(input_tuple(x)[0])


def accuracy(outputs: np.ndarray, targets: np.ndarray) -> float:
    """Top-1 accuracy of class scores ``outputs`` [N, C] against integer ``targets`` [N].

    Args:
        outputs: Class scores, one row per sample.
        targets: The true class of each sample.

    Returns:
        The fraction of samples whose highest score is their true class.
    """
    return float((outputs.argmax(axis=1) == targets).mean())


@dataclass
class Workload:
    """A trained model (the teacher), its data and its metric.

    ``train`` (inputs, targets) is used for distillation and calibration, ``validation`` for the
    metric, computed as ``metric(outputs, targets)`` on the artifact's first output. Inputs are one
    array or a tuple of arrays (see :data:`Inputs`), passed to ``model(*inputs)`` and fed to the ONNX
    graph under ``input_names``. ``example_input`` is one batch of size 1 (a tensor or a tuple).
    ``output_kind`` says what the first output is: ``"logits"`` (class scores: logit distillation,
    cross-entropy for Taylor importance) or ``"embedding"`` (vectors: similarity-structure
    distillation, in-batch contrastive loss); ``distill_loss(student_out, teacher_out, targets, cfg)``
    replaces either. ``feature_layers`` are the modules whose outputs intermediate-feature
    distillation matches. ``quality(predict)``, given a function that runs the artifact on inputs,
    returns named task-quality scores recorded beside the metric (e.g. what fidelity costs).
    ``teacher_file`` is the cached file a teacher trained by autocl was loaded from (built-ins): a
    study keeps a copy of it, so a lost cache never changes the teacher under a study.
    ``teacher_targets`` says the training targets are the teacher's own outputs (e.g. embeddings to
    distil on unlabeled text): distillation then reads them instead of running the teacher again.
    """

    name: str
    model: nn.Module
    example_input: Union[torch.Tensor, tuple[torch.Tensor, ...]]
    train: tuple[Inputs, np.ndarray]
    validation: tuple[Inputs, np.ndarray]
    metric: MetricFn = accuracy
    metric_name: str = "accuracy"
    higher_is_better: bool = True
    ignored_layers: tuple[str, ...] = ()
    input_names: tuple[str, ...] = ("input",)
    dynamic_axes: dict[str, dict[int, str]] | None = None
    distill_loss: Callable | None = None
    output_kind: str = "logits"
    feature_layers: tuple[str, ...] = ()
    quality: Callable[[Callable[[Inputs], np.ndarray]], dict[str, float]] | None = None
    description: str = ""
    version: str = "1"
    extra: dict = field(default_factory=dict)
    teacher_file: Path | None = None
    teacher_targets: bool = False

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
        for arr in (*input_tuple(self.train[0]), self.train[1], *input_tuple(self.validation[0]), self.validation[1]):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()[:16]

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        """The example input as a tuple of tensors (for tracing and export).

        Returns:
            ``example_input`` itself when it is a tuple or list, else ``(example_input,)``.
        """
        x = self.example_input
        return tuple(x) if isinstance(x, (tuple, list)) else (x,)

    def feed(self, inputs: Inputs) -> dict[str, np.ndarray]:
        """The onnxruntime feed for a batch of inputs.

        Args:
            inputs: One array, or a tuple of arrays in the order of ``input_names``.

        Returns:
            ``{input name: contiguous array}``.
        """
        return {name: np.ascontiguousarray(a) for name, a in zip(self.input_names, input_tuple(inputs), strict=False)}

    def sample_feed(self, batch_size: int) -> dict[str, np.ndarray]:
        """A feed of ``batch_size`` real validation rows: what latency is measured on.

        Args:
            batch_size: The number of rows (the validation rows are repeated if the split is smaller).

        Returns:
            The onnxruntime feed.
        """
        x = self.validation[0]
        idx = np.arange(batch_size) % n_samples(x)
        return self.feed(take(x, idx))

    def calibration_feeds(self, n: int, batch_size: int = 32) -> list[dict[str, np.ndarray]]:
        """The first ``n`` training rows, as feeds for activation calibration.

        Args:
            n: The number of rows (at most the training split's).
            batch_size: The number of rows per feed.

        Returns:
            The onnxruntime feeds.
        """
        x = self.train[0]
        n = min(n, n_samples(x))
        return [self.feed(take(x, slice(i, min(i + batch_size, n)))) for i in range(0, n, batch_size)]

    def layer_names(self) -> list[str]:
        """The quantizable layers (Conv, Linear and Embedding modules), in model order.

        An embedding table's precision is weight-only (``int8_dynamic``: 8-bit rows, dequantized after
        the lookup); on a transformer it is most of the file (MiniLM's word embeddings: 47 of 90 MB).

        Returns:
            The layers' module names.
        """
        kinds = (nn.Conv1d, nn.Conv2d, nn.Linear, nn.Embedding)
        return [name for name, m in self.model.named_modules() if isinstance(m, kinds)]


def limit_train(workload: Workload, n: int) -> Workload:
    """``workload`` with only ``n`` of its training rows (the scarce-data case).

    The rows are a fixed sample (seed 0) of the training split, kept in their order; distillation,
    calibration and Taylor importance then see only them. The validation split is unchanged, and so
    the metric's meaning. The workload's key changes with its data, so caches and studies of the
    limited workload are its own.

    Args:
        workload: The workload.
        n: How many training rows to keep (at least 2).

    Returns:
        A copy of ``workload`` (the same one when it has at most ``n`` rows).

    Raises:
        WorkloadError: ``n`` is below 2.
    """
    if n < 2:
        raise WorkloadError(f"train_limit must keep at least 2 training rows, got {n}")
    total = n_samples(workload.train[0])
    if n >= total:
        return workload
    keep = np.sort(np.random.default_rng(0).permutation(total)[:n])
    return replace(workload, train=(_rows(workload.train[0], keep), np.asarray(workload.train[1])[keep]))


def _rows(x: Inputs, keep: np.ndarray) -> Inputs:
    return take(x, keep) if isinstance(x, (tuple, list)) else x[keep]


_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "model": nn.Module,
    "example_input": (torch.Tensor, tuple),
    "train": tuple,
    "validation": tuple,
}


def validate_workload(w: object, *, source: str = "workload") -> None:
    """Check that ``w`` has every part of a ``Workload``, of the right type.

    Args:
        w: The object to check.
        source: How to name ``w`` in the error.

    Raises:
        WorkloadError: Naming the first missing or mistyped part of ``w``.
    """
    for part, kind in _REQUIRED.items():
        value = getattr(w, part, None)
        if value is None:
            expected = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise WorkloadError(f"{source}: missing '{part}' (expected {expected})")
        if not isinstance(value, kind):
            expected = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise WorkloadError(f"{source}: '{part}' must be a {expected}, got {type(value).__name__}")
    for part in ("train", "validation"):
        value = getattr(w, part)
        if len(value) != 2 or n_samples(value[0]) != len(value[1]) or len(value[1]) == 0:
            raise WorkloadError(f"{source}: '{part}' must be a non-empty (inputs, targets) pair of equal length")
    if not callable(getattr(w, "metric", None)):
        raise WorkloadError(f"{source}: 'metric' must be a function (outputs, targets) -> float")
    names = getattr(w, "input_names", ("input",))
    n_inputs = len(input_tuple(w.train[0]))  # type: ignore[attr-defined]
    if len(names) != n_inputs:
        raise WorkloadError(f"{source}: 'input_names' has {len(names)} name(s) but the inputs have {n_inputs} array(s)")
    known = {n for n, _ in w.model.named_modules()}  # type: ignore[attr-defined]
    for part in ("ignored_layers", "feature_layers"):
        for layer in getattr(w, part, ()):
            if layer not in known:
                raise WorkloadError(f"{source}: {part[:-1].replace('_', ' ')} {layer!r} is not a module of the model")
    output_kind = getattr(w, "output_kind", "logits")
    if output_kind not in ("logits", "embedding"):
        raise WorkloadError(f"{source}: 'output_kind' must be 'logits' or 'embedding', got {output_kind!r}")
    for part in ("quality", "distill_loss"):
        if getattr(w, part, None) is not None and not callable(getattr(w, part)):
            raise WorkloadError(f"{source}: '{part}' must be a function or None")
