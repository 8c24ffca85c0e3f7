import onnxruntime as ort
import pytest

from autocl.errors import ProfileError
from autocl.hardware import load_profile, profile_from_dict

from tests.conftest import ROOT

SHIPPED = sorted((ROOT / "hardware_profiles").glob("*.yaml"))
HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


def test_shipped_profile_loads():
    p = load_profile(ROOT / "hardware_profiles" / "cpu-local.yaml")
    assert p.execution_provider == "CPUExecutionProvider" and p.threads >= 1 and p.batch_size >= 1


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_profile_is_valid_and_names_are_unique(path):
    p = load_profile(path, check=False)
    assert p.measurement.min_repeats <= p.measurement.repeats
    assert [q.name for q in (load_profile(f, check=False) for f in SHIPPED)].count(p.name) == 1


def test_the_issue_s_targets_ship():
    profiles = {p.name: p for p in (load_profile(f, check=False) for f in SHIPPED)}
    edge = [p for p in profiles.values() if p.measure == "local" and p.threads == 1 and p.batch_size == 1]
    server = [p for p in profiles.values() if p.execution_provider == "CPUExecutionProvider" and p.threads > 1
              and p.batch_size > 1]
    cuda = [p for p in profiles.values() if p.execution_provider == "CUDAExecutionProvider"]
    remote = [p for p in profiles.values() if p.measure == "remote"]
    assert edge and server and cuda and remote


@pytest.mark.skipif(HAS_CUDA, reason="this onnxruntime has CUDA: the profile is runnable here")
def test_the_cuda_profile_is_refused_here_with_the_reason():
    with pytest.raises(ProfileError) as exc:
        load_profile(ROOT / "hardware_profiles" / "cuda.yaml")
    msg = str(exc.value)
    assert "cuda.yaml" in msg and "CUDAExecutionProvider" in msg and "CPUExecutionProvider" in msg


@pytest.mark.skipif(not HAS_CUDA, reason="needs onnxruntime with CUDAExecutionProvider and a GPU")
def test_the_cuda_profile_measures_on_the_gpu(tmp_path):
    from autocl.hardware import measure_latency
    from tests.hardware.conftest import feed_for, matmul_model

    p = load_profile(ROOT / "hardware_profiles" / "cuda.yaml")
    p = p.model_copy(update={"batch_size": 4})
    m = measure_latency(matmul_model(tmp_path / "m.onnx", 256), p, feed_for())
    assert m.median_ms > 0 and m.device["execution_provider"] == "CUDAExecutionProvider" and m.device["gpu"]


def test_a_profile_is_found_by_name(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert load_profile("cpu-local").name == "cpu-local"


def test_malformed_profile_names_file_and_field(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("name: x\nthreads: zero\n")
    with pytest.raises(ProfileError) as exc:
        load_profile(bad)
    assert str(bad) in str(exc.value) and "threads" in str(exc.value)
    bad.write_text("name: x\nthreads: 1\n  batch_size: 2\n")
    with pytest.raises(ProfileError, match="malformed YAML"):
        load_profile(bad)


def test_unavailable_execution_provider_is_refused_with_the_available_ones(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("name: gpu\nexecution_provider: NoSuchExecutionProvider\n")
    with pytest.raises(ProfileError) as exc:
        load_profile(f)
    assert "CPUExecutionProvider" in str(exc.value) and "execution_provider" in str(exc.value)


@pytest.mark.parametrize("data, field", [
    ({"measure": "remote"}, "remote"),
    ({"measure": "remote", "remote": {"url": "http://127.0.0.1:1"}}, "token"),
    ({"remote": {"url": "ftp://x", "token_env": "T"}, "measure": "remote"}, "remote.url"),
    ({"budgets": {"memory_mb": 10}, "measurement": {"memory": False}}, "measurement.memory"),
    ({"threads": 2, "affinity": [0]}, "one CPU per thread"),
    ({"batch_size": 2, "input_shapes": {"x": [4, 3]}}, "batch size"),
    ({"measurement": {"repeats": 5, "min_repeats": 9}}, "min_repeats"),
    ({"precisions": ["int3"]}, "precisions"),
    ({"budgets": {"latency_ms": -1}}, "budgets.latency_ms"),
])
def test_inconsistent_profiles_are_refused_with_the_reason(data, field):
    with pytest.raises(ProfileError) as exc:
        profile_from_dict({"name": "p", **data}, source="p.yaml")
    assert field in str(exc.value) and "p.yaml" in str(exc.value)


def test_a_feed_of_other_shapes_than_declared_is_refused():
    import numpy as np

    p = profile_from_dict({"name": "p", "batch_size": 2, "input_shapes": {"x": [2, 3]}})
    p.check_feed({"x": np.zeros((2, 3), np.float32)})
    with pytest.raises(ProfileError, match=r"expects input 'x' of shape \[2, 3\] but the workload feeds \[2, 4\]"):
        p.check_feed({"x": np.zeros((2, 4), np.float32)})
    with pytest.raises(ProfileError, match="declares input 'x'"):
        p.check_feed({"input": np.zeros((2, 3), np.float32)})


def test_remote_token_comes_from_file_or_environment(tmp_path, monkeypatch):
    f = tmp_path / "tok"
    f.write_text("  secret-token-123456  \n")
    p = profile_from_dict({"name": "r", "measure": "remote", "remote": {"url": "http://h:1", "token_file": str(f)}})
    assert p.remote.token() == "secret-token-123456"
    monkeypatch.setenv("AUTOCL_T", "from-env")
    p = profile_from_dict({"name": "r", "measure": "remote", "remote": {"url": "http://h:1", "token_env": "AUTOCL_T"}})
    assert p.remote.token() == "from-env"
    monkeypatch.delenv("AUTOCL_T")
    with pytest.raises(ProfileError, match="AUTOCL_T"):
        p.remote.token()
