"""OpenVINO's own runtime as a target: the cpu-openvino profile, its sessions, measurements, memory
and the per-op precision probe. Without the `openvino` package (`make install` installs it) the tests
that run it skip, and the profile is refused with one line."""

import sys

import numpy as np
import onnxruntime as ort
import pytest

from autocl.errors import ProfileError
from autocl.hardware import load_profile, measure_many, open_session, profile_from_dict
from autocl.openvino_session import OPENVINO, openvino_missing

from tests.conftest import ROOT
from tests.hardware.conftest import feed_for, matmul_model

needs_openvino = pytest.mark.skipif(openvino_missing() is not None, reason="needs the openvino package (make install)")
CPU_OV = ROOT / "hardware_profiles" / "cpu-openvino.yaml"


def _ov(**kw):
    return profile_from_dict({"name": "ov", "execution_provider": OPENVINO, "threads": 1, "batch_size": 4,
                              "measurement": {"warmup": 2, "repeats": 30, "min_repeats": 5, "max_seconds": 0.3}, **kw})


def test_the_shipped_openvino_profile_is_openvino_s_runtime_with_its_precisions():
    p = load_profile(CPU_OV, check=False)
    assert p.runtime == "openvino" and p.execution_provider == OPENVINO
    assert p.provider_options["INFERENCE_PRECISION_HINT"] == "f32"  # no silent bf16 on CPUs that have it
    assert "int8" in p.precisions and "fp16" not in p.precisions
    assert _ov().precisions == ["fp32", "int8", "int4"]  # the default when a profile lists none
    assert "float32" in _ov().left_out("fp16")
    local = load_profile(ROOT / "hardware_profiles" / "cpu-local.yaml", check=False)
    assert local.runtime == "onnxruntime" and (local.threads, local.batch_size) == (p.threads, p.batch_size)


def test_without_the_package_the_profile_is_refused_with_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino now fails
    with pytest.raises(ProfileError) as exc:
        load_profile(CPU_OV)
    msg = str(exc.value)
    assert "cpu-openvino.yaml" in msg and "execution_provider" in msg and "pip install openvino" in msg
    assert "\n" not in msg


def test_onnxruntime_s_plugin_name_points_to_the_runtime_autocl_runs(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("name: ovep\nexecution_provider: OpenVINOExecutionProvider\n")
    if "OpenVINOExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has the OpenVINO execution provider")
    with pytest.raises(ProfileError, match="execution_provider: OpenVINO"):
        load_profile(f)


@needs_openvino
def test_an_openvino_session_gives_onnxruntime_s_outputs_on_the_same_artifact(tmp_path):
    path = matmul_model(tmp_path / "m.onnx", 64, layers=3)
    feed = feed_for(64)
    ov = open_session(path, _ov())
    ref = open_session(path, profile_from_dict({"name": "cpu"}))
    assert [i.name for i in ov.get_inputs()] == ["x"]
    got, want = ov.run(None, feed)[0], ref.run(None, feed)[0]
    assert got.shape == want.shape and np.allclose(got, want, rtol=1e-4, atol=1e-4)
    # outputs are copies: the next run does not overwrite the last one's result
    again = ov.run(None, {"x": feed["x"] * 2})[0]
    assert np.allclose(got * 2, again, rtol=1e-4, atol=1e-4) and not np.allclose(got, again)


@needs_openvino
def test_openvino_is_timed_by_the_same_protocol_and_its_memory_measured(tmp_path):
    small, large = matmul_model(tmp_path / "s.onnx", 128), matmul_model(tmp_path / "l.onnx", 128, layers=12)
    a, b = measure_many([small, large], _ov(), feed_for(128), memory=[True, False])
    assert a.interleaved == 2 and a.n >= 5 and 0 < a.median_ms < b.median_ms
    assert a.device["execution_provider"] == OPENVINO and a.device["openvino"] and a.device["gpu"] is None
    assert a.memory and a.memory["session_mb"] > 0 and b.memory is None
    # the device key tells OpenVINO's measurements from onnxruntime's
    c = measure_many([small], profile_from_dict({"name": "ov", "threads": 1, "batch_size": 4,
                                                 "measurement": {"repeats": 5, "min_repeats": 3}}), feed_for(128),
                     memory=False)[0]
    assert c.device["key"] != a.device["key"] and c.device["openvino"] is None


@needs_openvino
def test_precisions_are_probed_on_openvino_s_execution_graph():
    from autocl.compress.support import unsupported_reason

    assert unsupported_reason("Conv", "int8", OPENVINO) is None  # QDQ int8 runs as a u8/i8 convolution
    assert unsupported_reason("MatMul", "int8", OPENVINO) is None
    assert unsupported_reason("MatMul", "int4", OPENVINO) is None
    why = unsupported_reason("Conv", "int8_dynamic", OPENVINO)
    assert why and "OpenVINO" in why and "f32" in why  # ConvInteger's convolution computes in f32 there
    assert unsupported_reason("Conv", "fp16", OPENVINO)  # decompressed to f32 under the f32 hint
    assert "Conv" in (unsupported_reason("Conv", "int4", OPENVINO) or "")  # autocl's own refusal, as on the CPU provider


@needs_openvino
def test_a_study_on_two_targets_keeps_a_precision_one_of_them_runs():
    from autocl.compress.support import refused_by_all

    ops = {"conv": {"Conv"}, "fc": {"MatMul"}}
    alone = refused_by_all(ops, ["fp16", "int8_dynamic"], [OPENVINO])
    assert "int8_dynamic" in alone["conv"]  # OpenVINO alone computes dynamic int8 Conv in f32
    both = refused_by_all(ops, ["fp16", "int8_dynamic"], [OPENVINO, "CPUExecutionProvider"])
    assert "int8_dynamic" not in both.get("conv", {})  # the CPU provider runs it: its front needs it
    why = both["conv"]["fp16"]  # neither runs a float16 Conv: refused, with each provider's reason
    assert OPENVINO in why and "CPUExecutionProvider" in why
