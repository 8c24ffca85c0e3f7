"""The metric of an artifact, computed by an onnxruntime session over the model you would ship."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from autocl.hardware import HardwareProfile, open_session
from autocl.runtime import train_threads
from autocl.workloads import Workload


def predict(path: str | Path, x: np.ndarray, profile: HardwareProfile, *, batch_size: int = 256) -> np.ndarray:
    """Run the artifact over ``x`` in batches and stack its first output."""
    sess = open_session(path, profile, threads=train_threads())
    name = sess.get_inputs()[0].name
    outs = [sess.run(None, {name: np.ascontiguousarray(x[i:i + batch_size], dtype=np.float32)})[0]
            for i in range(0, len(x), batch_size)]
    return np.concatenate(outs)


def evaluate_artifact(path: str | Path, workload: Workload, profile: HardwareProfile) -> float:
    """The workload's metric on its validation split, from the artifact's own outputs.

    Returns NaN when the metric is not finite; the caller decides what a NaN trial means.
    """
    x, y = workload.validation
    value = float(workload.metric(predict(path, x, profile), np.asarray(y)))
    return value if math.isfinite(value) else float("nan")
