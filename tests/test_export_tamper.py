"""Export and re-measurement when the cache was damaged or tampered with (issue 20, items 8 and 9):
a damaged cached teacher is restored from the study's copy, as ``search`` does, and an artifact
replaced together with its ``.sha256`` is never shipped: it is built again and matches the study."""

from __future__ import annotations

import json
import shutil

import optuna
import pytest

from autocl.export import export_trial, resolve_workload
from autocl.report import study_data
from autocl.study import run_search
from autocl.workloads import load_workload


@pytest.fixture(scope="module")
def own_study(tmp_path_factory, digits, fast_space, fast_profile):
    import os

    home = tmp_path_factory.mktemp("tamper-home")
    before = os.environ["AUTOCL_HOME"]
    os.environ["AUTOCL_HOME"] = str(home)
    (home / "cache" / "teachers").mkdir(parents=True)
    shutil.copyfile(digits.teacher_file, home / "cache" / "teachers" / digits.teacher_file.name)
    url = f"sqlite:///{home / 'tamper.db'}"
    run_search(
        load_workload("digits"), fast_space, fast_profile, study_name="tamper", storage=url, n_trials=2, remeasure=False
    )
    yield home, url, optuna.load_study(study_name="tamper", storage=url)
    os.environ["AUTOCL_HOME"] = before


def _flip(path, at: int = 4096, n: int = 16) -> None:
    data = bytearray(path.read_bytes())
    data[at : at + n] = bytes(b ^ 0xFF for b in data[at : at + n])
    path.write_bytes(bytes(data))


def test_a_damaged_cached_teacher_is_restored_from_the_study_for_export_and_remeasure(own_study, tmp_path):
    home, url, study = own_study
    teacher = home / "cache" / "teachers" / "digits-resnet-v1.pt"
    intact = teacher.read_bytes()
    _flip(teacher)
    data = study_data(study)
    assert resolve_workload(data, None, url).key == data.fingerprint["workload_key"]  # what remeasure calls
    assert teacher.read_bytes() == intact
    _flip(teacher)
    done = export_trial(study, tmp_path / "b", spec="fastest-within:0.5", storage=url, latency_tolerance=2.0)
    assert teacher.read_bytes() == intact and done.verification.sha_ok


def test_an_artifact_tampered_with_its_sha256_is_rebuilt_and_matches_the_study(own_study, tmp_path):
    home, url, study = own_study
    first = export_trial(study, tmp_path / "first", spec="fastest-within:0.5", storage=url, latency_tolerance=2.0)
    wanted = first.trial.artifact_sha256
    from autocl.compress._cache import file_sha256

    cached = [p for p in (home / "cache").rglob("*.onnx") if p.parent.name == "artifacts" and file_sha256(p) == wanted]
    assert cached
    for path in cached:  # replaced, and its seal rewritten to match: the cache alone cannot tell
        _flip(path, at=path.stat().st_size // 2)
        path.with_name(path.name + ".sha256").write_text(file_sha256(path))
    stages: list[str] = []
    again = export_trial(
        study, tmp_path / "again", trial=first.trial.number, storage=url, latency_tolerance=2.0, on_stage=stages.append
    )
    assert any("building it again" in s for s in stages), stages
    facts = json.loads((again.directory / "export.json").read_text())
    assert facts["verification"]["sha_ok"] and file_sha256(again.directory / "model.onnx") == wanted
