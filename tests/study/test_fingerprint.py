"""A study resumes only under the settings it was made with; a change is named in words; --fork."""

import optuna
import pytest
from typer.testing import CliRunner

from autocl.errors import StudyError
from autocl.hardware import profile_from_dict
from autocl.space import SearchSpace
from autocl.study import (
    check_study_name, default_storage, fingerprint_changes, prepare_run, run_search, study_fingerprint,
)


def _profile(**changes):
    base = {"name": "test-cpu", "threads": 1, "batch_size": 4,
            "measurement": {"warmup": 2, "repeats": 5, "min_repeats": 3, "max_seconds": 0.5}}
    return profile_from_dict({**base, **changes})


@pytest.fixture(scope="module")
def made(digits, fast_space, tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('fp') / 'fp.db'}"
    run_search(digits, fast_space, _profile(), study_name="fp", storage=url, n_trials=2, remeasure=False)
    return url


def test_changed_profile_content_is_named_in_words(fast_space):
    old = study_fingerprint("digits", "k", fast_space, [_profile()])
    new = study_fingerprint("digits", "k", fast_space, [_profile(batch_size=64, budgets={"latency_ms": 5.0})])
    changes = fingerprint_changes(old, new)
    assert "profile 'test-cpu' batch size 4 -> 64" in changes
    assert "profile 'test-cpu' budgets latency_ms unset -> 5.0" in changes
    assert fingerprint_changes(old, old) == []


def test_a_changed_space_names_the_field(fast_space):
    other = SearchSpace.model_validate({**fast_space.model_dump(), "prune": {"ratio": [0.0, 0.3]}})
    changes = fingerprint_changes(study_fingerprint("digits", "k", fast_space, [_profile()]),
                                  study_fingerprint("digits", "k", other, [_profile()]))
    assert changes == ["search space prune.ratio [0.0, 0.5] -> [0.0, 0.3]"]


def test_resuming_with_a_changed_profile_is_refused_with_the_fields(made, digits, fast_space):
    with pytest.raises(StudyError, match=r"batch size 4 -> 8.*--fork NEW_NAME"):
        run_search(digits, fast_space, _profile(batch_size=8), study_name="fp", storage=made, n_trials=1)
    with pytest.raises(StudyError, match=r"budgets latency_ms unset -> 5.0"):
        prepare_run("fp", made, "digits", fast_space, [_profile(budgets={"latency_ms": 5.0})])


def test_a_fork_is_seeded_with_the_still_valid_configurations(made, digits, fast_space):
    old = optuna.load_study(study_name="fp", storage=made)
    space = SearchSpace.model_validate({**fast_space.model_dump(), "prune": {"ratio": [0.0, 0.5, 0.3]}})
    plan = prepare_run("fp", made, "digits", space, [_profile(batch_size=8)], fork="fp-b8")
    done = [t for t in old.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert plan.study_name == "fp-b8" and len(plan.seeds) == len({frozenset(t.params.items()) for t in done}) >= 2
    narrow = SearchSpace.model_validate({**fast_space.model_dump(), "prune": {"ratio": [0.5]}})
    kept = prepare_run("fp", made, "digits", narrow, [_profile()], fork="fp-narrow").seeds
    # only configurations the narrowed space can still produce carry over: prune ratio 0.5
    assert kept and all(s.params.get("prune.ratio", 0.5) == 0.5 for s in kept)
    assert len(kept) < len(plan.seeds)
    result = run_search(digits, space, _profile(batch_size=8), study_name=plan.study_name, storage=plan.url,
                        n_trials=len(plan.seeds) + 1, remeasure=False, seeds=plan.seeds)  # +1: the int8 reference
    ran = {frozenset(t.params.items()) for t in result.study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert {frozenset(s.params.items()) for s in plan.seeds} <= ran
    assert any(t.user_attrs.get("seeded_from", {}).get("study") == "fp" for t in result.study.trials)


def test_another_workload_is_refused_before_it_is_loaded(made, fast_space, monkeypatch):
    import autocl.cli._search as cli_search
    from autocl.cli import app

    def never(name):
        raise AssertionError("the workload was loaded (its teacher trained) before the study was checked")

    monkeypatch.setattr(cli_search, "load_workload", never)
    monkeypatch.setattr(cli_search, "load_profile", lambda p: _profile())
    monkeypatch.setattr(cli_search, "load_space", lambda p: fast_space)
    result = CliRunner().invoke(app, ["search", "--workload", "mnist", "--study", "fp", "--storage", made])
    assert result.exit_code == 2, result.output
    assert "workload 'digits' -> 'mnist'" in result.output


@pytest.mark.parametrize("bad", ["../escape", "/abs/name", "a/b", "", ".hidden", "a\\b", "x" * 300])
def test_unsafe_study_names_are_refused(bad):
    with pytest.raises(StudyError, match="not allowed"):
        check_study_name(bad)
    with pytest.raises(StudyError, match="not allowed"):
        default_storage(bad)


def test_safe_names_pass():
    for good in ("demo", "my-study.1", "A_b-2"):
        assert check_study_name(good) == good


def test_the_cli_refuses_an_unsafe_name_in_one_line(autocl_home):
    from autocl.cli import app

    result = CliRunner().invoke(app, ["front", "--study", "../escape"])
    assert result.exit_code == 2 and "not allowed" in result.output
    assert "Traceback" not in result.output
    assert not (autocl_home.parent / "escape.db").exists()


def test_new_trials_count_only_this_process(digits, fast_space, tmp_path):
    url = f"sqlite:///{tmp_path / 'own.db'}"

    class OtherWorker:  # another process adds a trial to the study while this one runs
        def trial_started(self, number):
            optuna.load_study(study_name="own", storage=url).add_trial(
                optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))

        def stage(self, number, stage):
            pass

        def trial_finished(self, trial):
            pass

    result = run_search(digits, fast_space, _profile(), study_name="own", storage=url, n_trials=2,
                        remeasure=False, reporter=OtherWorker(), polish=False)
    assert len([t for t in result.study.trials if t.state.is_finished()]) == 4  # recipes not run yet wait
    assert len(result.new_trials) == 2
