import pytest

from autocl.errors import WorkloadError
from autocl.workloads import load_workload


def test_an_incomplete_user_workload_names_the_missing_part():
    with pytest.raises(WorkloadError, match="missing 'validation'"):
        load_workload("tests.workloads.user_workloads:incomplete")


def test_a_missing_function_and_module_are_named():
    with pytest.raises(WorkloadError, match="no function 'nope'"):
        load_workload("tests.workloads.user_workloads:nope")
    with pytest.raises(WorkloadError, match="cannot import module"):
        load_workload("no_such_pkg.mod:fn")


def test_a_user_workload_with_its_own_model_class_loads():
    w = load_workload("tests.workloads.user_workloads:depthwise")
    assert w.name == "user-depthwise" and "head" in w.layer_names()
