"""2:4 sparsity, the one-file technique plug-in: the pattern holds through distillation into the
ONNX artifact, the study sees it as size (not speed), and the space, key, notes and card derive it."""

from __future__ import annotations

import numpy as np
import onnx
import optuna
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from autocl.config import CompressionConfig, DistillConfig
from autocl.errors import ConfigError
from autocl.space import load_space, recipe_params
from autocl.techniques import technique, techniques
from autocl.techniques.nm_sparsity import nm_masks

TWO_FOUR = {"nm_sparsity": {"pattern": "2:4"}}


def _kept_per_group(w: np.ndarray, m: int) -> np.ndarray:
    """Non-zeros in each group of ``m`` consecutive input weights (input channels last for a conv)."""
    grouped = w if w.ndim == 2 else np.moveaxis(w, 1, -1)
    return (grouped.reshape(-1, m) != 0).sum(1)


def test_masks_keep_the_largest_n_of_every_m_and_leave_odd_widths_dense():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(8, 8, 3), nn.Flatten(), nn.Linear(8 * 4 * 4, 6), nn.Linear(6, 3))
    before = model[2].weight.detach().clone()
    masks = nm_masks(model, ["0", "2", "3"], 2, 4)
    assert sorted(masks) == ["0", "2"]  # 6 inputs are not groups of 4: layer 3 stays dense
    for layer in (model[0], model[2]):
        assert (_kept_per_group(layer.weight.detach().numpy(), 4) == 2).all()
    kept = before.reshape(-1, 4).abs().topk(2, dim=1).values
    assert torch.equal(model[2].weight.detach().reshape(-1, 4).abs().topk(2, dim=1).values, kept)
    assert (model[3].weight != 0).all()


def test_two_four_artifact_keeps_the_pattern_and_is_reported_as_size(digits, tmp_path_factory):
    from autocl.compress import Compressor
    from autocl.report._card import _technique_lines
    from autocl.study._record import is_compressed

    comp = Compressor(digits, tmp_path_factory.mktemp("cache"))
    plain = comp.artifact(CompressionConfig())
    cfg = CompressionConfig(distill=DistillConfig(steps=4, batch_size=32), techniques=TWO_FOUR)
    art = comp.artifact(cfg)
    assert cfg.trains and is_compressed(cfg.to_dict()) and art.student.key != plain.student.key
    sparse = art.student.structure["nm_sparsity"]["layers"]
    assert sparse, "no layer of the digits model took the pattern"
    weights = torch.load(art.student.weights_path, weights_only=True)
    for layer in sparse:  # distillation moved the weights; the held mask kept 2 of every 4
        assert (_kept_per_group(weights[f"{layer}.weight"].numpy(), 4) <= 2).all(), layer
    zeros = sum(int((numpy_helper.to_array(i) == 0).sum()) for i in onnx.load(str(art.path)).graph.initializer)
    assert zeros > 0.3 * sum(int(weights[f"{n}.weight"].numel()) for n in sparse)  # and into the artifact
    assert art.student.sparsity > 0.3
    assert art.compressed_size_bytes < plain.compressed_size_bytes  # zeros deflate: the honest gain
    assert any("2:4" in line and "no speed-up" in line for line in _technique_lines(cfg.to_dict()))


def test_key_is_unchanged_for_configs_without_it_and_the_stored_config_round_trips():
    plain = CompressionConfig()
    assert "techniques" not in plain.to_dict()  # stored configs look as before the registry
    off = CompressionConfig(techniques={"nm_sparsity": {"pattern": "off"}})
    assert off.student_key("w") == plain.student_key("w") and not off.trains
    on = CompressionConfig(techniques=TWO_FOUR)
    assert CompressionConfig.from_dict(on.to_dict()) == on and on.student_key("w") != plain.student_key("w")
    assert technique("nm_sparsity").notes(on.techniques["nm_sparsity"]) == ["2:4 sparse"]
    assert technique("nm_sparsity") in techniques()


def test_space_samples_it_and_recipes_pin_it_off(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("techniques:\n  nm_sparsity:\n    pattern: ['off', '2:4']\n")
    space = load_space(path)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(8):
        trial = study.ask()
        cfg = space.suggest(trial, ["a"])
        seen.add(trial.params["nm_sparsity.pattern"])
        assert ("nm_sparsity" in cfg.techniques) == (trial.params["nm_sparsity.pattern"] == "2:4")
    assert seen == {"off", "2:4"}
    assert all(r["nm_sparsity.pattern"] == "off" for r in recipe_params(space, ["a"]))


@pytest.mark.parametrize(
    ("yaml", "says"),
    [
        ("techniques:\n  nm_sparsity:\n    pattern: ['5:4']\n", "nm_sparsity.pattern: write 'off' or 'N:M'"),
        ("techniques:\n  nm_sparsty: {}\n", "unknown technique 'nm_sparsty'"),
    ],
)
def test_bad_sections_name_the_file_and_field(tmp_path, yaml, says):
    path = tmp_path / "space.yaml"
    path.write_text(yaml)
    with pytest.raises(ConfigError) as err:
        load_space(path)
    assert str(path) in str(err.value) and "field 'techniques'" in str(err.value) and says in str(err.value)
    assert "\n" not in str(err.value)
