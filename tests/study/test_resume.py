"""Resuming a study is refused when what its trials were measured against changed: the search space,
the teacher's weights or the data behind a workload of the same name. Each refusal is one clear
line that says what changed, and the stored study is left as it was."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from autocl.errors import StudyError
from autocl.space import SearchSpace
from autocl.study import run_search

NAME = "resumable"


@pytest.fixture(scope="module")
def study(digits, fast_space, fast_profile, tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('resume') / 'study.db'}"
    run_search(digits, fast_space, fast_profile, study_name=NAME, storage=url, n_trials=1, remeasure=False)
    return url


def _resume(workload, space, profile, url):
    return run_search(workload, space, profile, study_name=NAME, storage=url, n_trials=0, remeasure=False)


def _refused(workload, space, profile, url) -> str:
    import optuna

    before = len(optuna.load_study(study_name=NAME, storage=url).trials)
    with pytest.raises(StudyError) as err:
        _resume(workload, space, profile, url)
    assert len(optuna.load_study(study_name=NAME, storage=url).trials) == before
    message = str(err.value)
    assert "\n" not in message and NAME in message  # one line, naming the study
    return message


def test_resuming_with_the_same_space_and_workload_is_accepted(study, digits, fast_space, fast_profile):
    # equal, not identical, objects: what a second `autocl search` builds from the same files
    again = SearchSpace.model_validate(fast_space.model_dump(mode="json"))
    result = _resume(dataclasses.replace(digits), again, fast_profile, study)
    assert len([t for t in result.study.trials if t.state.is_finished()]) == 1  # the other recipes wait


def test_resuming_with_a_changed_space_is_refused(study, digits, fast_space, fast_profile):
    data = fast_space.model_dump(mode="json")
    data["distill"]["temperature"] = [2.0, 8.0]
    message = _refused(digits, SearchSpace.model_validate(data), fast_profile, study)
    assert "space" in message.lower()


def test_resuming_with_a_retrained_teacher_of_the_same_name_is_refused(study, digits, fast_space, fast_profile):
    teacher = copy.deepcopy(digits.model)
    with torch.no_grad():
        next(teacher.parameters()).mul_(1.01)  # another training run: same name, same layers, other weights
    retrained = dataclasses.replace(digits, model=teacher)
    assert retrained.name == digits.name and retrained.layer_names() == digits.layer_names()
    message = _refused(retrained, fast_space, fast_profile, study)
    assert "workload" in message.lower() or "teacher" in message.lower()


def test_resuming_with_other_data_under_the_same_name_is_refused(study, digits, fast_space, fast_profile):
    x, y = digits.validation
    other = dataclasses.replace(digits, validation=(x[:300], y[:300]))
    message = _refused(other, fast_space, fast_profile, study)
    assert "workload" in message.lower() or "data" in message.lower()


def test_resuming_on_another_profile_is_refused_naming_both(study, digits, fast_space, fast_profile):
    other = fast_profile.model_copy(update={"name": "other-cpu"})
    message = _refused(digits, fast_space, other, study)
    assert "profile" in message and "test-cpu" in message and "other-cpu" in message


def test_the_metric_s_direction_is_the_workload_s(study, digits, fast_space, fast_profile, tmp_path):
    import optuna

    up, down = optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE
    assert optuna.load_study(study_name=NAME, storage=study).directions == [up, down, down]
    lower = dataclasses.replace(digits, name="digits-error", metric=lambda o, t: 1.0 - float((o.argmax(1) == t).mean()),
                                higher_is_better=False)
    url = f"sqlite:///{tmp_path / 'down.db'}"
    result = run_search(lower, fast_space, fast_profile, study_name="down", storage=url, n_trials=0, remeasure=False)
    assert result.study.directions == [down, down, down]
