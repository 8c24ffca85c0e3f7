"""Out-of-range knobs are refused when the space is loaded: one line naming the field, no database."""

import pytest
from typer.testing import CliRunner

from autocl.errors import ConfigError
from autocl.space import load_space


@pytest.mark.parametrize("yaml_text, field, words", [
    ("prune: {ratio: 1.5}", "prune.ratio", "ratio must be <= 0.9"),
    ("prune: {ratio: {low: 0.0, high: 1.5}}", "prune.ratio", "1.5 (high)"),
    ("distill: {temperature: -2}", "distill.temperature", "temperature must be > 0"),
    ("distill: {alpha: [0.5, 1.2]}", "distill.alpha", "alpha must be <= 1"),
    ("prune: {unstructured: {low: -0.1, high: 0.5}}", "prune.unstructured", "must be >= 0"),
])
def test_out_of_range_values_are_refused_at_load(tmp_path, yaml_text, field, words):
    path = tmp_path / "space.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=field) as err:
        load_space(path)
    assert words in str(err.value)


def test_a_prune_ratio_of_0_8_is_accepted(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("prune: {ratio: {low: 0.0, high: 0.8, step: 0.1}}")
    assert load_space(path).prune.ratio.high == 0.8


def test_the_cli_refuses_before_creating_a_database(tmp_path, autocl_home):
    from autocl.cli import app

    path = tmp_path / "space.yaml"
    path.write_text("distill: {temperature: -2}")
    result = CliRunner().invoke(app, ["search", "--workload", "digits", "--space", str(path), "--study", "ranges"])
    assert result.exit_code == 2 and "distill.temperature" in result.output and "Traceback" not in result.output
    assert not (autocl_home / "ranges.db").exists()
