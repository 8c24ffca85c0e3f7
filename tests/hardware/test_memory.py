"""Memory of an inference session, measured in a fresh process."""

import pytest

from autocl.errors import TrialError
from autocl.hardware import measure_latency, measure_memory, profile_from_dict

from tests.hardware.conftest import feed_for, matmul_model

PROFILE = profile_from_dict({"name": "t", "batch_size": 4})


def test_bigger_weights_take_more_session_memory_and_the_size_is_the_file_s(tmp_path):
    small = matmul_model(tmp_path / "small.onnx", 256)  # 0.25 MB of weights
    big = matmul_model(tmp_path / "big.onnx", 256, layers=64)  # 16 MB of weights
    ms, mb = measure_memory(small, PROFILE, feed_for()), measure_memory(big, PROFILE, feed_for())
    assert mb["session_mb"] - ms["session_mb"] >= 12
    assert mb["artifact_mb"] == pytest.approx(big.stat().st_size / 2**20, abs=0.01)
    for m in (ms, mb):
        assert m["peak_mb"] >= m["private_mb"] >= m["session_mb"] > 0
        assert m["runtime_mb"] > 0 and m["arena_enabled"] is True


def test_memory_is_stored_with_the_measurement_when_asked(tmp_path):
    path = matmul_model(tmp_path / "m.onnx", 256)
    p = profile_from_dict({"name": "t", "batch_size": 4, "measurement": {"warmup": 1, "repeats": 5, "min_repeats": 3}})
    m = measure_latency(path, p, feed_for())
    assert m.memory and m.memory["peak_mb"] > 0 and m.to_dict()["memory"] == m.memory


def test_an_artifact_the_probe_cannot_load_is_a_trial_error_naming_it(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(TrialError, match="broken.onnx"):
        measure_memory(bad, PROFILE, feed_for())
