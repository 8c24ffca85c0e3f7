"""Losing or damaging the cache costs recomputation, never the study."""

import shutil

import numpy as np
import pytest
import torch

from autocl.compress import Compressor
from autocl.config import CompressionConfig
from autocl.errors import WorkloadError
from autocl.study import prepare_run, run_search
from autocl.workloads import load_workload


@pytest.fixture()
def own_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("AUTOCL_HOME", str(home))
    return home


def test_retraining_the_teacher_gives_the_same_weights(tmp_path):
    from autocl.workloads._digits import _load_or_train
    from autocl.workloads._models import DigitResNet

    rng = np.random.default_rng(0)
    data = (rng.normal(size=(128, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, 128))
    a, b = (_load_or_train(lambda: DigitResNet(channels=(8, 8)), tmp_path / f"{n}.pt", data, epochs=1)
            for n in "ab")
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_the_study_restores_its_teacher_when_the_cache_is_lost(own_home, digits, fast_space, fast_profile):
    (own_home / "cache" / "teachers").mkdir(parents=True)
    shutil.copyfile(digits.teacher_file, own_home / "cache" / "teachers" / digits.teacher_file.name)
    wl = load_workload("digits")
    url = f"sqlite:///{own_home / 'kept.db'}"
    run_search(wl, fast_space, fast_profile, study_name="kept", storage=url, n_trials=1, remeasure=False)
    teacher = wl.teacher_file.read_bytes()
    shutil.rmtree(own_home / "cache")
    wl.teacher_file.parent.mkdir(parents=True)
    wl.teacher_file.write_bytes(b"another machine's teacher")  # missing or different: the study's copy wins
    plan = prepare_run("kept", url, "digits", fast_space, [fast_profile])
    assert plan.restored == [wl.teacher_file.resolve()] and wl.teacher_file.read_bytes() == teacher
    again = run_search(load_workload("digits"), fast_space, fast_profile, study_name="kept", storage=url,
                       n_trials=1, remeasure=False)
    assert len(again.new_trials) == 1


def test_a_corrupt_teacher_is_named(own_home):
    path = own_home / "cache" / "teachers" / "digits-resnet-v1.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a state dict")
    with pytest.raises(WorkloadError, match=str(path)):
        load_workload("digits")


def test_corrupt_students_and_artifacts_are_rebuilt(digits, tmp_path):
    compressor = Compressor(digits, tmp_path)
    cfg = CompressionConfig.from_dict({"prune": {"ratio": 0.5}, "distill": {"steps": 4, "batch_size": 32},
                                       "quant": {"default": "int8", "calibration_samples": 32}})
    first = compressor.artifact(cfg)
    first.path.write_bytes(b"garbage")
    first.student.weights_path.write_bytes(first.student.weights_path.read_bytes()[:100])
    stages = []
    again = compressor.artifact(cfg, stages.append)
    assert "quantizing" in stages and "distilling" in stages
    assert not again.student.reused and again.sha256 == first.sha256
    assert compressor.artifact(cfg).student.reused  # intact now: reused
    compressor.baseline().write_bytes(b"x")
    assert compressor.baseline().stat().st_size > 1000
