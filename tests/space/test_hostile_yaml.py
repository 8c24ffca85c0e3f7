"""Hostile and unlucky YAML: every file and inline text autocl reads is refused in one line naming
the file and field when it holds a non-finite number, a lone surrogate, too deep a nesting or bytes
that are not UTF-8, before any work starts (issue 20, items 1, 2 and 10)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from autocl._yaml import parse_yaml
from autocl.errors import ConfigError
from autocl.space import SearchSpace, load_space
from tests.conftest import ROOT, TINY_PROFILE_YAML

BASE = "name: hostile\ndistill: {{steps: 8, batch_size: 32, polish: {{epochs: 0}}}}\n{extra}\n"


@pytest.mark.parametrize(
    ("extra", "field", "said"),
    [
        ("prune: {ratio: .nan}", "prune.ratio", "nan"),
        ("prune: {ratio: {low: .nan, high: 0.5}}", "prune.ratio.low", "nan"),
        ("prune: {ratio: [0.0, -.inf]}", "prune.ratio.1", "-inf"),
        ("quant: {precisions: [fp32, int8], calibration_samples: .inf}", "quant.calibration_samples", "inf"),
        ('quant: {precisions: [fp32, int8]}\nnote: "\\ud800"', "note", "surrogate"),
    ],
)
def test_a_space_file_with_a_non_finite_number_or_a_surrogate_is_refused_naming_the_field(tmp_path, extra, field, said):
    path = tmp_path / "space.yaml"
    path.write_text(BASE.format(extra=extra))
    with pytest.raises(ConfigError) as err:
        load_space(path)
    assert err.value.file == str(path) and err.value.field == field, str(err.value)
    assert said in str(err.value) and "\n" not in str(err.value)


def test_deep_nesting_and_undecodable_bytes_are_refused_not_a_recursion_error(tmp_path):
    deep = tmp_path / "deep.yaml"
    deep.write_text("name: x\nprune: " + "[" * 3000 + "]" * 3000 + "\n")
    with pytest.raises(ConfigError, match="nested more than"):
        load_space(deep)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_space(latin)


def test_the_one_reader_refuses_anchors_where_asked_and_keeps_ordinary_documents():
    assert parse_yaml("a: [1, 2.5, {b: c}]", "x") == {"a": [1, 2.5, {"b": "c"}]}
    assert parse_yaml("a: &v 1\nb: *v", "x") == {"a": 1, "b": 1}
    with pytest.raises(ConfigError, match="anchors and aliases"):
        parse_yaml("a: &v 1\nb: *v", "x", aliases=False)
    with pytest.raises(ConfigError, match="limit is 10"):
        parse_yaml("a: 12345678901", "x", max_chars=10)
    with pytest.raises(ConfigError, match="UTF-8"):
        parse_yaml('a: "\ud800"', "x")


def test_a_space_built_in_code_refuses_nan_too():
    with pytest.raises(ValueError, match="finite"):
        SearchSpace.model_validate({"name": "x", "prune": {"ratio": {"low": float("nan"), "high": 0.5}}})


def test_search_with_a_nan_space_exits_2_in_one_line_and_leaves_no_database(tmp_path):
    (tmp_path / "space.yaml").write_text(BASE.format(extra="quant: {precisions: [fp32], calibration_samples: .inf}"))
    (tmp_path / "profile.yaml").write_text(TINY_PROFILE_YAML)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "autocl",
            "search",
            "--workload",
            "digits",
            "--space",
            "space.yaml",
            "--profile",
            "profile.yaml",
            "--study",
            "nan",
            "--trials",
            "1",
            "--storage",
            f"sqlite:///{tmp_path / 'nan.db'}",
        ],
        cwd=tmp_path,
        capture_output=True,
        check=False,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
    )
    assert run.returncode == 2, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "quant.calibration_samples" in lines[0] and "Traceback" not in run.stderr, run.stderr
    assert not (tmp_path / "nan.db").exists()
