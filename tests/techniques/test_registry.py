"""The registry: built-ins found by module, third-party techniques by entry point, in build order."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest
from pydantic import BaseModel
from torch import nn

import autocl.techniques._base as base
from autocl.config import CompressionConfig
from autocl.errors import ConfigError
from autocl.techniques import BaseTechnique, Hold, techniques


class ToyConfig(BaseModel):
    scale: float = 1.0


class ToySpace(BaseModel):
    scale: list[float] = [1.0]


class Toy(BaseTechnique):
    name = "toy"
    phase = "structure"
    order = 0
    config_type = ToyConfig
    space_type = ToySpace
    legend = "toy = scaled"

    def apply(self, student: nn.Module, config: BaseModel, context) -> Hold | None:
        return None


@pytest.fixture
def plugged(monkeypatch):
    def fake(group: str):
        assert group == base.ENTRY_POINT_GROUP
        return [EntryPoint("toy", f"{__name__}:Toy", group)]

    monkeypatch.setattr(base, "entry_points", fake)
    monkeypatch.setattr(base, "_cache", None)
    yield  # monkeypatch puts the real entry points and cache back


def test_an_entry_point_adds_a_technique_in_build_order(plugged):
    names = [t.name for t in techniques()]
    assert "toy" in names and "nm_sparsity" in names
    assert names.index("toy") < names.index("nm_sparsity")  # structure before train
    cfg = CompressionConfig(techniques={"toy": {"scale": 0.5}})
    assert cfg.trains and [t.name for t, _ in cfg.techniques_on()] == ["toy"]


def test_a_broken_entry_point_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(base, "entry_points", lambda group: [EntryPoint("bad", "no_such_module_x:T", group)])
    monkeypatch.setattr(base, "_cache", None)
    with pytest.raises(ConfigError, match=r"technique 'bad' \(no_such_module_x:T\) cannot be loaded") as err:
        techniques()
    assert "\n" not in str(err.value)


def _key_before_the_registry(cfg: CompressionConfig, workload_key: str) -> str:
    """``CompressionConfig.student_key`` as written before the registry (commit 00c7484)."""
    import hashlib
    import json

    from autocl.config import PruneConfig

    prune = cfg.prune.model_dump(mode="json")
    for knob in ("depth", "depth_criterion", "rank_ratio", "layer_rank_ratios"):
        if prune[knob] == PruneConfig.model_fields[knob].get_default(call_default_factory=True):
            del prune[knob]
    distill = cfg.distill.model_dump(mode="json")
    if distill["ladder_steps"] is None:
        del distill["ladder_steps"]
    record = {"w": workload_key, "p": prune, "d": distill}
    if cfg.qat_key() is not None:
        record["q"] = cfg.qat_key()
    if cfg.cluster.clusters:
        record["c"] = cfg.cluster.model_dump(mode="json")
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"cluster": {"clusters": 16}},
        {"prune": {"ratio": 0.3, "depth": 1, "rank_ratio": 0.5, "unstructured": 0.5}},
        {"quant": {"default": "int8", "qat": True}, "distill": {"ladder_steps": 90}},
        {"cluster": {"clusters": 4}, "quant": {"default": "int8", "qat": True}},
    ],
)
def test_student_keys_of_existing_configs_do_not_change(data):
    cfg = CompressionConfig.from_dict(data)
    assert cfg.student_key("wk") == _key_before_the_registry(cfg, "wk")
    assert "techniques" not in cfg.to_dict()


def test_the_cli_refuses_a_misspelt_technique_in_one_line_with_exit_2(tmp_path):
    from typer.testing import CliRunner

    from autocl.cli import app

    path = tmp_path / "space.yaml"
    path.write_text("techniques:\n  nm_sparsty: {}\n")
    url = f"sqlite:///{tmp_path / 'bad.db'}"
    result = CliRunner().invoke(app, ["search", "--space", str(path), "--study", "bad", "--storage", url])
    assert result.exit_code == 2, result.output
    assert "unknown technique 'nm_sparsty'" in result.output and "field 'techniques'" in result.output
    assert not (tmp_path / "bad.db").exists()  # refused before anything was created
