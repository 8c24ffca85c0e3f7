"""--train-limit: a workload option keeping N training rows, on every workload, stored in the spec."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from autocl.errors import WorkloadError
from autocl.workloads import limit_train, load_workload, n_samples, with_options


def test_a_spec_option_keeps_n_training_rows_and_nothing_else(digits):
    limited = load_workload("digits?train_limit=100")
    assert n_samples(limited.train[0]) == 100 and len(limited.train[1]) == 100
    assert limited.name == digits.name and limited.key != digits.key
    assert np.array_equal(limited.validation[0], digits.validation[0])
    # the kept rows are rows of the full split, in order, the same every time
    full = digits.train[0].reshape(len(digits.train[0]), -1)
    index = [int(np.flatnonzero((full == row.reshape(-1)).all(1))[0]) for row in limited.train[0]]
    assert index == sorted(index) and load_workload("digits?train_limit=100").key == limited.key


def test_several_inputs_are_cut_together_and_a_large_limit_changes_nothing(digits):
    x, y = digits.train
    two = dataclasses.replace(
        digits,
        train=((x, x * 2), y),
        input_names=("a", "b"),
        validation=((digits.validation[0],) * 2, digits.validation[1]),
    )
    cut = limit_train(two, 10)
    assert np.array_equal(cut.train[0][1], cut.train[0][0] * 2) and len(cut.train[1]) == 10
    assert limit_train(digits, 10**6) is digits


@pytest.mark.parametrize("spec", ["digits?train_limit=1", "digits?train_limit=x", "digits?rows=5"])
def test_a_bad_option_is_one_clear_error(spec):
    with pytest.raises(WorkloadError) as err:
        load_workload(spec)
    assert "train_limit" in str(err.value) and "\n" not in str(err.value)


def test_the_cli_option_becomes_part_of_the_stored_spec():
    assert with_options("mnist", train_limit=512) == "mnist?train_limit=512"
    assert with_options("pkg.mod:fn?train_limit=3", train_limit=9) == "pkg.mod:fn?train_limit=9"
    assert with_options("mnist") == "mnist"
