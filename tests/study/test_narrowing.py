"""Narrowing a space to what its profiles run: the shipped CPU profiles keep every precision the CPU
provider really runs (found by the per-op probe, not by a list), and a narrowing is never silent."""

from pathlib import Path

import optuna
import pytest

from autocl.compress.support import unsupported_reason
from autocl.config import PRECISIONS
from autocl.errors import ConfigError
from autocl.hardware import default_precisions, load_profile, profile_from_dict
from autocl.openvino_session import OPENVINO, openvino_missing
from autocl.space import SearchSpace, load_space
from autocl.study import narrowing
from autocl.study._targets import record_narrowing

ROOT = Path(__file__).resolve().parents[2]
CPU = "CPUExecutionProvider"
SPACES = sorted((ROOT / "search_spaces").glob("*.yaml"))
CPU_PROFILES = [p for p in sorted((ROOT / "hardware_profiles").glob("*.yaml"))
                if p.stem not in ("cuda", "remote-template", "cpu-openvino")]


@pytest.fixture(scope="module")
def cpu_runs() -> set[str]:
    """What the CPU provider runs with a real kernel on a MatMul (the op with every precision),
    asked of onnxruntime itself."""
    return {p for p in PRECISIONS if unsupported_reason("MatMul", p, CPU) is None}


def test_the_cpu_default_is_what_the_cpu_provider_runs(cpu_runs):
    assert {"fp32", "int8", "int8_dynamic", "int4"} <= cpu_runs  # onnxruntime 1.32 has all four on CPU
    assert set(default_precisions(CPU)) == cpu_runs
    assert profile_from_dict({"name": "plain"}).precisions == default_precisions(CPU)
    cuda = profile_from_dict({"name": "gpu", "execution_provider": "CUDAExecutionProvider"})
    assert "fp16" in cuda.precisions and "int8" not in cuda.precisions


@pytest.mark.skipif(openvino_missing() is not None, reason="needs the openvino package (make install)")
def test_the_openvino_default_is_what_openvino_runs_and_the_space_is_narrowed_with_why():
    runs = {p for p in PRECISIONS if unsupported_reason("MatMul", p, OPENVINO) is None}
    assert set(default_precisions(OPENVINO)) == runs == {"fp32", "int8", "int4"}
    ov = load_profile(ROOT / "hardware_profiles" / "cpu-openvino.yaml", check=False)
    space = SearchSpace.model_validate({"name": "all", "prune": {"ratio": [0.0, 0.5]},
                                        "quant": {"precisions": ["fp32", "fp16", "int8", "int8_dynamic"]}})
    narrowed, note = narrowing(space, [ov])
    assert narrowed.quant.precisions == ["fp32", "int8"] and note is not None
    assert set(note.removed) == {"fp16", "int8_dynamic"} and "cpu-openvino" in note.line()
    assert "float32" in note.line()  # why: OpenVINO computes them in float32


def test_the_shipped_cpu_profiles_are_found():
    names = {p.stem for p in CPU_PROFILES}
    assert {"cpu-local", "cpu-edge-1t", "cpu-server"} <= names and len(SPACES) >= 3
    for path in CPU_PROFILES:
        assert load_profile(path, check=False).execution_provider == CPU, path


@pytest.mark.parametrize("profile_path", CPU_PROFILES, ids=lambda p: p.stem)
@pytest.mark.parametrize("space_path", SPACES, ids=lambda p: p.stem)
def test_shipped_spaces_keep_every_precision_the_cpu_runs(space_path, profile_path, cpu_runs):
    space, profile = load_space(space_path), load_profile(profile_path, check=False)
    narrowed, note = narrowing(space, [profile])
    q, n = space.quant, narrowed.quant
    assert set(q.precisions) & cpu_runs <= set(n.precisions), (space.name, profile.name, n.precisions)
    assert set(q.fallback.precisions) & cpu_runs <= set(n.fallback.precisions)
    if isinstance(q.layers, dict):
        for layer, choices in q.layers.items():
            assert set(choices) & cpu_runs <= set(n.layers[layer]), layer
    # what is left out is only what the provider cannot run, and it is said, with the profile's name
    dropped = set(q.precisions) - set(n.precisions)
    assert not dropped & cpu_runs
    if dropped:
        assert note is not None and set(note.removed) == dropped and profile.name in note.line()
        assert all(p in note.reason for p in dropped)
    else:
        assert note is None and narrowed is space


def _space(precisions, fallback=("fp32",), layers="all"):
    return SearchSpace.model_validate({"quant": {"precisions": list(precisions), "layers": layers,
                                                 "fallback": {"precisions": list(fallback)}}})


def test_narrowing_names_what_it_removed_the_profile_and_why():
    edge = profile_from_dict({"name": "old-edge", "precisions": ["fp32", "int8"]})
    narrowed, note = narrowing(_space(["fp32", "fp16", "int8", "int8_dynamic"], fallback=["int8_dynamic", "fp32"]),
                               [edge])
    assert narrowed.quant.precisions == ["fp32", "int8"] and narrowed.quant.fallback.precisions == ["fp32"]
    assert note.removed == ("fp16", "int8_dynamic") and note.fallback_removed == ("int8_dynamic",)
    line = note.line()
    assert "old-edge" in line and "fp16" in line and "int8_dynamic" in line and "fallback" in line
    assert "float16" in note.reason  # the CPU provider's own gap, not just "not listed"
    assert note.to_dict() == {"removed": ["fp16", "int8_dynamic"], "fallback_removed": ["int8_dynamic"],
                              "profile": "old-edge", "reason": note.reason}


def test_fallbacks_keep_fp32_and_explicit_layers_are_narrowed():
    int8_only = profile_from_dict({"name": "npu", "precisions": ["int8"]})
    narrowed, note = narrowing(_space(["int8", "fp32"], fallback=["fp32"]), [int8_only])
    assert narrowed.quant.precisions == ["int8"] and narrowed.quant.fallback.precisions == ["fp32"]
    assert note.removed == ("fp32",) and note.fallback_removed == ()
    cpu = profile_from_dict({"name": "cpu"})
    layered, note = narrowing(_space(["fp32"], layers={"fc": ["fp16", "int4"], "conv": ["fp32"]}), [cpu])
    assert layered.quant.layers == {"fc": ["int4"], "conv": ["fp32"]} and note.removed == ("fp16",)
    with pytest.raises(ConfigError, match="quant.layers.fc"):
        narrowing(_space(["fp32"], layers={"fc": ["fp16"]}), [cpu])


def test_a_precision_one_profile_runs_is_kept_for_all():
    fp32_only = profile_from_dict({"name": "a", "precisions": ["fp32"]})
    space = _space(["fp32", "int8_dynamic"])
    assert narrowing(space, [fp32_only, profile_from_dict({"name": "b"})]) == (space, None)
    _, note = narrowing(space, [fp32_only, profile_from_dict({"name": "c", "precisions": ["fp32"]})])
    assert note.profile == "a, c"


class _Notes:
    def __init__(self):
        self.notes, self.stages = [], []

    def note(self, text):
        self.notes.append(text)

    def stage(self, number, text):
        self.stages.append(text)


class _StagesOnly:
    def __init__(self):
        self.stages = []

    def stage(self, number, text):
        self.stages.append(text)


def test_the_study_records_the_narrowing_and_the_reporter_shows_it():
    _, note = narrowing(_space(["fp32", "fp16"]), [profile_from_dict({"name": "cpu-x"})])
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    shown, plain = _Notes(), _StagesOnly()
    record_narrowing(study, note, shown)
    record_narrowing(study, note, plain)
    assert shown.notes == [note.line()] and not shown.stages and plain.stages == [note.line()]
    assert study.user_attrs["narrowed"]["removed"] == ["fp16"] and study.user_attrs["narrowed"]["profile"] == "cpu-x"
    record_narrowing(study, None, shown)  # the same study, no longer narrowed: cleared, nothing said
    assert study.user_attrs["narrowed"] is None and len(shown.notes) == 1
