import pytest

from autocl.errors import ProfileError
from autocl.hardware import load_profile, measure_latency, profile_from_dict

from tests.conftest import ROOT


def test_shipped_profile_loads():
    p = load_profile(ROOT / "hardware_profiles" / "cpu-local.yaml")
    assert p.execution_provider == "CPUExecutionProvider" and p.threads >= 1 and p.batch_size >= 1


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


def test_latency_is_measured_with_warmup_repeats_and_spread(digits, tmp_path):
    from autocl.compress import export_onnx

    path = export_onnx(digits.model, digits.example_inputs(), tmp_path / "m.onnx")
    prof = profile_from_dict({"name": "t", "batch_size": 2,
                              "measurement": {"warmup": 1, "repeats": 7, "min_repeats": 3, "max_seconds": 5}})
    m = measure_latency(path, prof, digits.sample_feed(prof.batch_size))
    assert m.n == 7 == len(m.samples_ms)
    assert min(m.samples_ms) <= m.median_ms <= m.p90_ms <= max(m.samples_ms)
    assert m.iqr_ms >= 0 and m.batch_size == 2
    assert m.device["onnxruntime"] and m.device["execution_provider"] == "CPUExecutionProvider"
