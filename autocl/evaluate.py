"""The metric of an artifact, computed by an onnxruntime session over the model you would ship."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from autocl.hardware import HardwareProfile, open_session
from autocl.runtime import train_threads
from autocl.workloads import Inputs, Workload, input_tuple, n_samples, take


def metric_drop(metric: float, baseline: float, higher_is_better: bool) -> float:
    """How much worse ``metric`` is than the fp32 ``baseline``, in the metric's own units.

    0.01 is one accuracy point, or 0.01 of cosine; positive is worse. The one definition of a metric
    drop: the search's ``--max-drop``, polishing, the front, the report, ``--pick`` and the benchmarks
    read it.

    Args:
        metric: The compressed model's metric.
        baseline: The fp32 teacher's metric.
        higher_is_better: Whether a higher metric is better (e.g. accuracy) or worse (e.g. a loss).

    Returns:
        The drop: ``baseline - metric`` when higher is better, else ``metric - baseline``.
    """
    return baseline - metric if higher_is_better else metric - baseline


def predict(
    path: str | Path,
    x: Inputs,
    profile: HardwareProfile,
    *,
    input_names: tuple[str, ...] | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """Run the artifact over the inputs ``x`` in batches and stack its first output.

    Args:
        path: The ONNX artifact.
        x: The inputs (an array, or a tuple of arrays for a model with several inputs).
        profile: How the onnxruntime session runs.
        input_names: The model's input names, in the order of ``x`` (default: the session's first inputs).
        batch_size: The number of rows per run.

    Returns:
        The first output of every batch, concatenated along the first axis.
    """
    sess = open_session(path, profile, threads=train_threads())
    names = input_names or tuple(i.name for i in sess.get_inputs())[: len(input_tuple(x))]
    outs = [
        sess.run(None, dict(zip(names, take(x, slice(i, i + batch_size)), strict=False)))[0]
        for i in range(0, n_samples(x), batch_size)
    ]
    return np.concatenate(outs)


def evaluate_artifact(
    path: str | Path, workload: Workload, profile: HardwareProfile, *, limit: int | None = None
) -> float:
    """The workload's metric on its validation split, from the artifact's own outputs.

    Returns NaN when the metric is not finite; the caller decides what a NaN trial means.

    Args:
        path: The ONNX artifact.
        workload: Gives the validation split, the input names and the metric.
        profile: How the onnxruntime session runs.
        limit: Evaluate on the first ``limit`` rows only (default: all of them).

    Returns:
        The metric, or NaN when it is not finite.
    """
    x, y = workload.validation
    if limit is not None and limit < n_samples(x):
        x, y = take(x, slice(0, limit)), np.asarray(y)[:limit]
    value = float(workload.metric(predict(path, x, profile, input_names=workload.input_names), np.asarray(y)))
    return value if math.isfinite(value) else float("nan")


def evaluate_quality(path: str | Path, workload: Workload, profile: HardwareProfile) -> dict[str, float]:
    """The workload's task-quality scores (``Workload.quality``), computed with the artifact.

    They show what the search metric costs on the task.

    Args:
        path: The ONNX artifact.
        workload: Its ``quality`` function is given a function running the artifact on inputs.
        profile: How the onnxruntime session runs.

    Returns:
        ``{score name: value}``; empty when the workload defines no ``quality``.
    """
    if workload.quality is None:
        return {}
    sess = open_session(path, profile, threads=train_threads())

    def run(x: Inputs, batch_size: int = 128) -> np.ndarray:
        return np.concatenate(
            [
                sess.run(None, workload.feed(take(x, slice(i, i + batch_size))))[0]
                for i in range(0, n_samples(x), batch_size)
            ]
        )

    return {k: float(v) for k, v in workload.quality(run).items()}
