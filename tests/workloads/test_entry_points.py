"""Bringing your own model: ``package.module:function`` or a registered entry point, checked for
completeness, and compressed end to end like a built-in."""

import sys

import pytest

from autocl.errors import WorkloadError
from autocl.workloads import ENTRY_POINT_GROUP, load_workload, registered_workloads


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A real installed distribution (a dist-info folder on sys.path) that registers two workloads."""
    dist = tmp_path / "my_models-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-models\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n"
        "my-depthwise = tests.workloads.user_workloads:depthwise\n"
        "my-broken = tests.workloads.user_workloads:incomplete\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.path_importer_cache.clear()


def test_a_registered_entry_point_loads_by_name(installed_plugin):
    assert registered_workloads()["my-depthwise"] == "tests.workloads.user_workloads:depthwise"
    w = load_workload("my-depthwise")
    assert w.name == "user-depthwise" and w.layer_names() == ["stem", "dw", "pw", "head"]


def test_an_incomplete_registered_workload_is_rejected_naming_the_missing_part(installed_plugin):
    with pytest.raises(WorkloadError, match="missing 'validation'"):
        load_workload("my-broken")


def test_an_unknown_name_lists_the_registered_ones(installed_plugin):
    with pytest.raises(WorkloadError, match="my-depthwise"):
        load_workload("nope")


def test_a_bad_output_kind_and_feature_layer_are_named():
    from tests.workloads.user_workloads import depthwise

    w = depthwise()
    from autocl.workloads import validate_workload

    w.output_kind = "tokens"
    with pytest.raises(WorkloadError, match="output_kind"):
        validate_workload(w)
    w.output_kind, w.feature_layers = "logits", ("nope",)
    with pytest.raises(WorkloadError, match="feature layer 'nope'"):
        validate_workload(w)


def test_a_user_model_with_residual_and_depthwise_blocks_compresses_end_to_end(tmp_path, fast_profile):
    from autocl.compress import Compressor
    from autocl.compress.quantize import layer_precisions
    from autocl.config import CompressionConfig, DistillConfig, PruneConfig, QuantConfig
    from autocl.evaluate import evaluate_artifact

    w = load_workload("tests.workloads.user_workloads:depthwise")
    comp = Compressor(w, tmp_path)
    cfg = CompressionConfig(prune=PruneConfig(ratio=0.5, importance="taylor"),
                            distill=DistillConfig(steps=3, batch_size=16, feature_weight=0.5),
                            quant=QuantConfig(layers={"pw": "int8", "dw": "int8_dynamic", "head": "int4"},
                                              calibration_samples=16))
    art = comp.artifact(cfg)
    assert art.student.parameters < sum(p.numel() for p in w.model.parameters())
    assert layer_precisions(art.path, comp.layers) == {"stem": {"fp32"}, "dw": {"int8_dynamic"}, "pw": {"int8"},
                                                       "head": {"int4"}}
    assert 0.0 <= evaluate_artifact(art.path, w, fast_profile) <= 1.0
