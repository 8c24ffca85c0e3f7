"""The pre-pass runs by default on the precisions where it is cheap: calibration-free ones first."""

from types import SimpleNamespace

import pytest
from torch import nn

from autocl.space import load_space
from autocl.study import _sensitivity
from autocl.study._sensitivity import cheap_precisions


@pytest.fixture
def space(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nquant:\n  precisions: [int8, int4, int8_dynamic, fp32]\n")
    return load_space(path)


def _compressor(n_layers: int, width: int):
    model = nn.Sequential(*[nn.Linear(width, width, bias=False) for _ in range(n_layers)])
    return SimpleNamespace(layers=[str(i) for i in range(n_layers)], workload=SimpleNamespace(model=model))


def test_a_small_model_gets_every_precision(space):
    assert cheap_precisions(_compressor(4, 16), space) == {"int8", "int4", "int8_dynamic"}


def test_a_large_model_gets_the_calibration_free_column_first(space, monkeypatch):
    comp = _compressor(4, 100)  # 40,000 parameters, 4 layers: 4 pairs per precision
    monkeypatch.setattr(_sensitivity, "CHEAP_WORK", 4 * 40_000)
    assert cheap_precisions(comp, space) == {"int8_dynamic"}
    monkeypatch.setattr(_sensitivity, "CHEAP_WORK", 8 * 40_000)
    assert cheap_precisions(comp, space) == {"int8_dynamic", "int4"}  # static int8 needs calibration: last
    monkeypatch.setattr(_sensitivity, "CHEAP_WORK", 4 * 40_000 - 1)
    assert cheap_precisions(comp, space) == set()
