import optuna
import pytest

from autocl.config import CompressionConfig
from autocl.errors import ConfigError
from autocl.space import load_space

from tests.conftest import ROOT


def test_default_space_loads_and_suggests_a_precision_for_every_layer():
    space = load_space(ROOT / "search_spaces" / "default.yaml")
    layers = ["stem.0", "stages.0.conv1", "fc"]
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    trial = study.ask()
    cfg = space.suggest(trial, layers)
    assert isinstance(cfg, CompressionConfig)
    assert set(cfg.quant.layers) == set(layers)
    assert 0.0 <= cfg.prune.ratio <= 0.8
    # the fallback encoding: one model-wide precision and a count of fallback layers, not a coin per layer
    assert "quant.precision" in trial.params and not any(k.startswith("bits.") for k in trial.params)
    assert CompressionConfig.from_dict(cfg.to_dict()) == cfg


def test_malformed_yaml_names_the_file_and_line(tmp_path):
    bad = tmp_path / "space.yaml"
    bad.write_text("prune:\n  ratio: {low: 0.1, high: 0.5\nquant: [\n")
    with pytest.raises(ConfigError) as exc:
        load_space(bad)
    assert str(bad) in str(exc.value) and "line" in str(exc.value)


def test_a_bad_field_is_named_with_what_was_expected(tmp_path):
    bad = tmp_path / "space.yaml"
    bad.write_text("prune:\n  ratio: {low: 0.5, high: 0.1}\n")
    with pytest.raises(ConfigError) as exc:
        load_space(bad)
    msg = str(exc.value)
    assert str(bad) in msg and "prune.ratio" in msg and "high" in msg


def test_an_unknown_precision_and_an_unknown_field_are_refused(tmp_path):
    bad = tmp_path / "space.yaml"
    bad.write_text("quant:\n  precisions: [fp32, int3]\n")
    with pytest.raises(ConfigError, match=r"quant\.precisions\.1"):
        load_space(bad)
    bad.write_text("distill:\n  temprature: 3\n")
    with pytest.raises(ConfigError, match=r"distill\.temprature.*unknown field"):
        load_space(bad)


def test_an_unknown_layer_name_is_refused_with_the_real_names(tmp_path):
    f = tmp_path / "space.yaml"
    f.write_text("quant:\n  layers: {stem.0: [int8], head: [fp32, int8]}\n")
    space = load_space(f)
    with pytest.raises(ConfigError) as exc:
        space.check_against(["stem.0", "fc"], {"stem.0", "fc"})
    assert "quant.layers.head" in str(exc.value) and "fc" in str(exc.value) and str(f) in str(exc.value)
