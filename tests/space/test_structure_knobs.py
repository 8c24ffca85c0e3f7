"""The depth and low-rank knobs: sampled from the YAML into the configuration, part of the student
key, pinned off in the by-hand recipes, and invisible (fingerprint, key) while left at their defaults."""

import optuna
import pytest

from autocl.config import CompressionConfig, PruneConfig
from autocl.errors import ConfigError
from autocl.space import SearchSpace
from autocl.space._recipes import recipe_params

LAYERS = ["stem.0", "stages.0.conv1", "fc"]


def _space(**prune):
    return SearchSpace.model_validate({"prune": {"ratio": [0.0, 0.5], **prune}, "distill": {"steps": 4},
                                       "quant": {"precisions": ["fp32", "int8"]}})


def test_knobs_are_sampled_into_the_config_and_change_the_student_key():
    space = _space(depth=[0, 1], depth_criterion=["uniform", "importance"], rank_ratio=[1.0, 0.5],
                   layer_rank_ratios={"fc": [0.25, 1.0]})
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"], sampler=optuna.samplers.RandomSampler(0))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        cfg = space.suggest(trial, LAYERS)
        seen.add((cfg.prune.depth, cfg.prune.rank_ratio))
        assert cfg.prune.layer_rank_ratios["fc"] == trial.params["prune.rank_ratio.fc"]
        assert ("prune.depth_criterion" in trial.params) == (cfg.prune.depth > 0)
        assert CompressionConfig.from_dict(cfg.to_dict()) == cfg
    assert {d for d, _ in seen} == {0, 1} and {r for _, r in seen} == {1.0, 0.5}
    base = CompressionConfig()
    keys = {base.student_key("w"), CompressionConfig(prune=PruneConfig(depth=1)).student_key("w"),
            CompressionConfig(prune=PruneConfig(rank_ratio=0.5)).student_key("w"),
            CompressionConfig(prune=PruneConfig(depth=1, depth_criterion="importance")).student_key("w")}
    assert len(keys) == 4
    assert PruneConfig(depth=1).changes_model and PruneConfig(rank_ratio=0.5).changes_model
    assert not PruneConfig().changes_model


def test_defaults_leave_fingerprints_and_keys_as_they_were():
    plain = _space()
    assert "depth" not in plain.model_dump()["prune"] and "rank_ratio" not in plain.model_dump()["prune"]
    assert _space(depth=0.0, rank_ratio=1.0).fingerprint == plain.fingerprint != _space(depth=[0, 1]).fingerprint
    # the key of a default student is the one written before these knobs existed
    # the keys of students without them are the ones written before these knobs existed
    assert CompressionConfig().student_key("w") == "5fac7aaf3526f8d4"
    assert CompressionConfig(prune=PruneConfig(ratio=0.3)).student_key("w") == "893cc175fbc2fc44"


def test_a_heads_only_student_is_not_the_one_cached_before_heads_alone_were_pruned():
    # before, head_ratio with ratio 0 removed no head: such a cached student is unpruned (and its weights
    # no longer fit the architecture), so its key moved; students pruned in width as well keep theirs
    assert CompressionConfig(prune=PruneConfig(head_ratio=0.25)).student_key("w") == "3680c80500f6f2e4"  # was 4cdf2f1e49069fdf
    assert CompressionConfig(prune=PruneConfig(ratio=0.125, head_ratio=0.25)).student_key("w") == "4aec7d521e2df1b3"


def test_recipes_pin_depth_and_rank_off():
    for params in recipe_params(_space(depth=[0, 1, 2], rank_ratio=[0.5, 1.0]), LAYERS):
        assert params["prune.depth"] == 0 and params["prune.rank_ratio"] == 1.0


def test_out_of_range_knobs_are_refused_when_the_space_is_read():
    with pytest.raises(Exception, match="rank_ratio"):
        _space(rank_ratio=[0.0, 0.5])
    with pytest.raises(Exception, match="depth"):
        _space(depth={"low": -1, "high": 2})
    with pytest.raises(ConfigError, match="rank ratio"):
        CompressionConfig.from_dict({"prune": {"layer_rank_ratios": {"fc": 1.5}}})


def test_recipes_are_post_training_dense_and_unfused_where_the_space_searches_those():
    """By hand is post-training int8 with dense weights: the recipes pin QAT and clustering off (a
    cnn-mixed search once ran its recipes with 16 shared weights). Fusion is on only in the unpruned
    recipes' twins (a peer tool's tuned configuration); every pruned recipe is on the exported graph."""
    from autocl.space import load_space
    from tests.conftest import ROOT

    space = load_space(ROOT / "search_spaces" / "cnn-mixed.yaml")
    assert len(space.cluster.clusters) > 1 and len(space.quant.qat) > 1  # the space does search them
    space = space.model_copy(update={"quant": space.quant.model_copy(update={"fuse_first": [True, False]})})
    recipes = recipe_params(space, LAYERS)
    for params in recipes:
        assert params["cluster.clusters"] == 0 and params["quant.qat"] is False
        assert params["quant.fuse_first"] is False or params["prune.ratio"] == 0.0
    assert any(p["quant.fuse_first"] for p in recipes) and not all(p["quant.fuse_first"] for p in recipes)
