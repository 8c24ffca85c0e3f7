"""The metric is the workload's metric of the artifact's own outputs on the whole validation split:
every validation row, no training row, computed by an onnxruntime session over the file."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import onnxruntime as ort
import pytest

from autocl.compress.onnx_export import export_onnx
from autocl.evaluate import evaluate_artifact, evaluate_quality, predict
from autocl.hardware import HardwareProfile

PROFILE = HardwareProfile(name="cpu-eval")


@pytest.fixture(scope="module")
def teacher_onnx(digits, tmp_path_factory):
    path = tmp_path_factory.mktemp("evaluate") / "teacher.onnx"
    return export_onnx(digits.model, digits.example_inputs(), path, input_names=digits.input_names,
                       dynamic_axes=digits.dynamic_axes)


def outputs_by_hand(path, x: np.ndarray) -> np.ndarray:
    """The artifact's outputs on all of ``x`` in one onnxruntime call: no batching, no autocl code."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: np.ascontiguousarray(x)})[0]


def accuracy_by_hand(path, x: np.ndarray, y: np.ndarray) -> float:
    return float((outputs_by_hand(path, x).argmax(axis=1) == np.asarray(y)).mean())


def test_the_metric_is_the_accuracy_of_the_artifact_on_the_whole_validation_split(digits, teacher_onnx):
    x, y = digits.validation
    assert len(y) > 256  # more rows than one evaluation batch: every batch must count
    expected = accuracy_by_hand(teacher_onnx, x, y)
    assert evaluate_artifact(teacher_onnx, digits, PROFILE) == pytest.approx(expected, abs=1e-12)


def test_every_validation_row_counts_and_no_training_row_does(digits, teacher_onnx):
    # the same teacher, judged on a validation split whose rows past the 256th are all misses: a
    # metric read from the training split, or from the first rows only, is far from the true one
    x, y = digits.validation
    missed = np.asarray(y).copy()
    missed[256:] = (outputs_by_hand(teacher_onnx, x[256:]).argmax(axis=1) + 1) % 10
    workload = dataclasses.replace(digits, validation=(x, missed))
    expected = accuracy_by_hand(teacher_onnx, x, missed)
    assert expected <= 256 / len(missed)
    assert accuracy_by_hand(teacher_onnx, x[:256], missed[:256]) - expected > 0.2
    assert accuracy_by_hand(teacher_onnx, *digits.train) - expected > 0.2
    assert evaluate_artifact(teacher_onnx, workload, PROFILE) == pytest.approx(expected, abs=1e-12)


def test_a_limit_scores_exactly_the_first_rows(digits, teacher_onnx):
    # the sensitivity pre-pass scores on the first rows only, and says so with `limit`
    x, y = digits.validation
    expected = accuracy_by_hand(teacher_onnx, x[:100], np.asarray(y)[:100])
    assert evaluate_artifact(teacher_onnx, digits, PROFILE, limit=100) == pytest.approx(expected, abs=1e-12)
    assert evaluate_artifact(teacher_onnx, digits, PROFILE, limit=10_000) == pytest.approx(
        accuracy_by_hand(teacher_onnx, x, y), abs=1e-12)


def test_a_metric_that_is_not_finite_is_reported_as_nan(digits, teacher_onnx):
    broken = dataclasses.replace(digits, metric=lambda outputs, targets: float("inf"))
    assert math.isnan(evaluate_artifact(teacher_onnx, broken, PROFILE))


def test_predict_reads_the_input_names_from_the_graph_and_keeps_every_batch(digits, teacher_onnx):
    x = digits.validation[0]
    out = predict(teacher_onnx, x, PROFILE, batch_size=64)  # 400 rows: 7 batches, the last one short
    assert out.shape[0] == len(x)
    np.testing.assert_allclose(out, outputs_by_hand(teacher_onnx, x), rtol=1e-4, atol=1e-5)


def test_task_quality_is_computed_with_the_artifact_on_every_row(digits, teacher_onnx):
    x, y = digits.validation
    def quality(run):
        out = run(x)  # more rows than one batch
        return {"accuracy": float((out.argmax(axis=1) == y).mean()), "rows": len(out)}

    scores = evaluate_quality(teacher_onnx, dataclasses.replace(digits, quality=quality), PROFILE)
    assert scores == {"accuracy": pytest.approx(accuracy_by_hand(teacher_onnx, x, y), abs=1e-12), "rows": len(x)}
    assert isinstance(scores["rows"], float)
    assert evaluate_quality(teacher_onnx, digits, PROFILE) == {}  # a workload without task scores
