"""Per-layer precision choices bound to a target: refused with reasons, pruned by sensitivity."""

import optuna
import pytest

from autocl.config import CompressionConfig, QuantConfig
from autocl.errors import ConfigError, StudyError
from autocl.space import SearchSpace, load_space

from tests.conftest import ROOT

LAYERS = ["stem.0", "stages.0.conv1", "fc"]
REFUSED = {"stem.0": {"int4": "no 4-bit Conv"}, "stages.0.conv1": {"int4": "no 4-bit Conv"}}


def _space(**quant):
    return SearchSpace.model_validate({"quant": {"precisions": ["fp32", "int8", "int4"], "encoding": "per_layer", **quant}})


def test_refused_precisions_are_dropped_from_generic_choices():
    bound = _space().restrict(LAYERS, REFUSED)
    assert bound.layer_choices(LAYERS) == {"stem.0": ["fp32", "int8"], "stages.0.conv1": ["fp32", "int8"],
                                           "fc": ["fp32", "int8", "int4"]}
    trial = optuna.create_study().ask()
    cfg = bound.suggest(trial, LAYERS)
    assert cfg.quant.layers["stem.0"] != "int4"
    assert set(trial.distributions["bits.stem.0"].choices) == {"fp32", "int8"}


def test_a_refused_precision_asked_for_by_name_is_an_error_with_the_reason():
    space = SearchSpace.model_validate({"quant": {"layers": {"stem.0": ["int8", "int4"]}}}).model_copy(
        update={"source": "my-space.yaml"})
    with pytest.raises(ConfigError) as exc:
        space.restrict(LAYERS, REFUSED)
    msg = str(exc.value)
    assert "my-space.yaml" in msg and "quant.layers.stem.0" in msg and "no 4-bit Conv" in msg


def test_a_refused_default_is_an_error():
    space = SearchSpace.model_validate({"quant": {"layers": ["fc"], "default": "int4"}})
    with pytest.raises(ConfigError, match="quant.default"):
        space.restrict(LAYERS, REFUSED)


def test_hopeless_choices_go_but_fp32_always_stays():
    bound = _space().restrict(LAYERS, REFUSED, {"fc": {"int4": "drop 0.3", "int8": "drop 0.2", "fp32": "x"}})
    assert bound.layer_choices(LAYERS)["fc"] == ["fp32"]


def test_conditional_knobs_are_sampled_only_when_they_matter():
    space = SearchSpace.model_validate({"quant": {"precisions": ["fp32", "int4"], "layers": {"fc": ["int4"]},
                                                  "int4_block_size": [32, 128], "calibration": ["minmax", "entropy"]}})
    trial = optuna.create_study().ask()
    cfg = space.suggest(trial, LAYERS)
    assert "quant.int4_block_size" in trial.params and "quant.calibration" not in trial.params
    assert cfg.quant.int4_block_size in (32, 128)


@pytest.mark.parametrize("name", ["default", "minilm", "cnn-mixed", "vit"])
def test_shipped_spaces_load_and_round_trip(name):
    space = load_space(ROOT / "search_spaces" / f"{name}.yaml")
    trial = optuna.create_study(directions=["maximize", "minimize", "minimize"]).ask()
    cfg = space.suggest(trial, LAYERS)
    assert CompressionConfig.from_dict(cfg.to_dict()) == cfg


def test_version_1_configs_written_before_the_new_fields_still_load():
    old = {"type": "autocl.CompressionConfig", "version": 1,
           "prune": {"ratio": 0.3, "importance": "l2", "ignored_layers": [], "round_to": 8},
           "distill": {"temperature": 4.0, "alpha": 0.5, "steps": 60, "lr": 0.001, "batch_size": 64},
           "quant": {"default": "fp32", "layers": {"fc": "int8"}, "calibration_samples": 128}}
    cfg = CompressionConfig.from_dict(old)
    assert cfg.quant.calibration == "minmax" and cfg.prune.unstructured == 0.0 and cfg.distill.schedule == "cosine"


def test_compact_bits_have_one_character_per_precision():
    q = QuantConfig(layers={"a": "fp32", "b": "fp16", "c": "int8", "d": "int8_dynamic", "e": "int4"})
    assert q.compact(["a", "b", "c", "d", "e"]) == "fh8d4"


def test_int4_block_size_must_be_a_power_of_two():
    with pytest.raises(Exception, match="power of two"):
        QuantConfig(int4_block_size=48)


def test_sensitivity_prepass_stores_the_table_and_prunes_choices(digits, fast_profile, tmp_path):
    from autocl.compress import Compressor
    from autocl.study._sensitivity import prepare_space

    space = SearchSpace.model_validate({"quant": {"precisions": ["fp32", "int8", "int8_dynamic", "int4"],
                                                  "calibration_samples": 32, "sensitivity_samples": 64,
                                                  "sensitivity_max_drop": 0.0}})
    study = optuna.create_study(study_name="sens", directions=["maximize", "minimize", "minimize"])
    comp = Compressor(digits, tmp_path / "cache")
    bound = prepare_space(study, space, comp, fast_profile, sensitivity=True)
    table = study.user_attrs["sensitivity"]
    refused = study.user_attrs["refused_precisions"]
    assert set(table) == set(comp.layers)
    assert "int4" in table["fc"] and "int4" not in table["stem.0"] and "int4" in refused["stem.0"]
    assert all(isinstance(d, float) for row in table.values() for d in row.values())
    choices = bound.layer_choices(comp.layers)
    for layer, row in table.items():
        for p, drop in row.items():
            assert (p in choices[layer]) == (drop <= 0.0), (layer, p, drop)
    # a study searched without the pre-pass refuses to turn it on when resumed
    plain = optuna.create_study(study_name="plain", directions=["maximize", "minimize", "minimize"])
    prepare_space(plain, space, comp, fast_profile, sensitivity=False)
    plain.add_trial(optuna.trial.create_trial(values=[1.0, 1.0, 1.0]))
    with pytest.raises(StudyError, match="without the sensitivity pre-pass"):
        prepare_space(plain, space, comp, fast_profile, sensitivity=True)


def test_recipes_are_every_uniform_precision_at_each_prune_ratio():
    from autocl.space import recipe_params

    space = SearchSpace.model_validate({"prune": {"ratio": {"low": 0.0, "high": 0.8, "step": 0.1}},
                                        "quant": {"precisions": ["fp32", "int8", "int8_dynamic", "int4"]}})
    bound = space.restrict(LAYERS, REFUSED)
    recipes = recipe_params(bound, LAYERS)
    seen = {(r["prune.ratio"], r["quant.precision"]) for r in recipes}
    # 4 ratios x 4 precisions, less the unpruned fp32 model (the baseline itself)
    assert len(recipes) == len(seen) == 15
    assert (0.0, "fp32") not in seen and (0.7, "int8") in seen and (0.5, "int8_dynamic") in seen
    assert all(r["quant.fallbacks"] == 0 and r["distill.temperature"] == 4.0 for r in recipes)
    # a recipe is a whole-model precision: where a layer cannot take it (int4 on a Conv), it falls back
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    study.enqueue_trial(next(r for r in recipes if r["quant.precision"] == "int4"))
    cfg = bound.suggest(study.ask(), LAYERS)
    assert cfg.quant.layers == {"stem.0": "fp32", "stages.0.conv1": "fp32", "fc": "int4"}


def test_recipes_snap_into_the_space_and_do_not_repeat():
    from autocl.space import recipe_params

    space = SearchSpace.model_validate({"prune": {"ratio": [0.0, 0.125], "head_ratio": [0.0, 0.25]},
                                        "distill": {"temperature": 0.05},
                                        "quant": {"precisions": ["int8_dynamic"]}})
    recipes = recipe_params(space, LAYERS)
    assert [(r["prune.ratio"], r["prune.head_ratio"]) for r in recipes] == [(0.0, 0.0), (0.125, 0.25)]
    assert "distill.temperature" not in recipes[0]  # fixed in the space: not a parameter


def test_fallback_layers_follow_the_sensitivity_ranking():
    space = SearchSpace.model_validate({"quant": {"precisions": ["int8", "fp32"],
                                                  "fallback": {"precisions": ["fp32"], "max_layers": 2}}})
    ranked = space.restrict(LAYERS, {}).with_ranking({"int8": ["stages.0.conv1", "fc", "stem.0"]})
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    for k, expected in ((0, set()), (1, {"stages.0.conv1"}), (2, {"stages.0.conv1", "fc"})):
        study.enqueue_trial({"quant.precision": "int8", "quant.fallbacks": k})
        cfg = ranked.suggest(study.ask(), LAYERS)
        assert {n for n, p in cfg.quant.layers.items() if p == "fp32"} == expected
    # without a ranking, the network's edges fall back first
    study.enqueue_trial({"quant.precision": "int8", "quant.fallbacks": 2})
    cfg = space.restrict(LAYERS, {}).suggest(study.ask(), LAYERS)
    assert {n for n, p in cfg.quant.layers.items() if p == "fp32"} == {"stem.0", "fc"}
    # an fp32 model has nothing to fall back to fp32 from: no fallback knob is sampled
    study.enqueue_trial({"quant.precision": "fp32"})
    trial = study.ask()
    assert set(space.suggest(trial, LAYERS).quant.layers.values()) == {"fp32"}
    assert "quant.fallbacks" not in trial.params


def test_sensitivity_ranking_puts_the_largest_drop_first():
    from autocl.study._sensitivity import ranking

    table = {"a": {"int8": 0.001}, "b": {"int8": 0.02, "int4": 0.5}, "c": {"int8": float("nan")},
             "d": {"int8": 0.0}, "e": {"int8": 0.0}}
    # noticeable drops first (NaN first), then the ties with the network's edges (first, last) first
    assert ranking(table) == {"int8": ["c", "b", "a", "e", "d"], "int4": ["b"]}


def test_each_unpruned_recipe_has_a_fused_twin_where_the_space_samples_fuse_first():
    from autocl.space import recipe_params

    raw = {"prune": {"ratio": [0.0, 0.125]}, "quant": {"precisions": ["int8_dynamic", "int8", "fp32"]}}
    plain = recipe_params(SearchSpace.model_validate(raw), LAYERS)
    assert all("quant.fuse_first" not in r for r in plain)  # a space without the knob: no twin
    raw["quant"]["fuse_first"] = [False, True]
    recipes = recipe_params(SearchSpace.model_validate(raw), LAYERS)
    fused = [r for r in recipes if r["quant.fuse_first"]]
    # INC's tuned configuration: the whole unpruned model in one precision on the fused graph
    assert {(r["prune.ratio"], r["quant.precision"]) for r in fused} == {(0.0, "int8_dynamic"), (0.0, "int8")}
    # each twin comes right after its plain recipe, among a new study's first trials
    for twin in fused:
        i = recipes.index(twin)
        assert recipes[i - 1] == {**twin, "quant.fuse_first": False}
    assert len(recipes) == len(plain) + 2
    # the twin is a valid trial of the space: it suggests a config with fuse_first on
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    study.enqueue_trial(fused[0])
    cfg = SearchSpace.model_validate(raw).suggest(study.ask(), LAYERS)
    assert cfg.quant.fuse_first and cfg.prune.ratio == 0.0
