"""``autocl cache``, ``autocl cache prune`` and ``--cache-max``: usage per workload and study, pruning
that lists first and keeps the front, and a full disk ending a search with one line and exit 2."""

import errno
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from autocl.cli import app
from autocl.compress import CacheLayout, Compressor
from autocl.config import CompressionConfig, QuantConfig
from autocl.runtime import cache_dir
from autocl.study import read_trials, run_search
from tests.cli.test_cli import PROFILE, SPACE


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cache-cli")
    (d / "space.yaml").write_text(SPACE)
    (d / "profile.yaml").write_text(PROFILE)
    return d


@pytest.fixture(scope="module")
def study(autocl_home, digits, fast_space, fast_profile):
    url = f"sqlite:///{autocl_home / 'cachecli.db'}"
    run_search(
        digits,
        fast_space,
        fast_profile,
        study_name="cachecli",
        storage=url,
        n_trials=4,
        polish=False,
        remeasure=False,
        sensitivity=False,
        recipes=False,
    )
    return optuna.load_study(study_name="cachecli", storage=url)


def _front_keys(study):
    front = [r for r in read_trials(study, study.user_attrs["profile"]["name"]) if r.status == "front"]
    return {r.student_key for r in front}


def test_cache_shows_use_per_workload_and_study(study):
    result = CliRunner().invoke(app, ["cache"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "digits-" in out and "cachecli" in out and "kept" in out and "checkpoints" in out and "teachers" in out
    assert "budget of a search here" in out


def test_prune_lists_first_removes_with_yes_and_keeps_the_front(study, digits):
    layout = CacheLayout.of(cache_dir(), digits.name, digits.key)
    extra = Compressor(digits, cache_dir()).artifact(CompressionConfig(quant=QuantConfig(default="fp32")))
    before = {(e.kind, e.key) for e in layout.entries()}
    listed = CliRunner().invoke(app, ["cache", "prune", "--max", "0"])
    assert listed.exit_code == 0, listed.output
    assert "would remove" in listed.output and "--yes" in listed.output
    assert {(e.kind, e.key) for e in layout.entries()} == before  # nothing removed without --yes
    assert extra.path.stem in listed.output  # an entry no front member needs
    front = _front_keys(study)
    stems = [Path(t.user_attrs["artifact_path"]).stem for t in study.trials if t.user_attrs.get("student_key") in front]
    assert front and stems and not any(s in listed.output for s in stems)  # front members' artifacts are not listed
    done = CliRunner().invoke(app, ["cache", "prune", "--max", "0", "--yes"])
    assert done.exit_code == 0 and "removed" in done.output, done.output
    left = {e.student_key for e in layout.entries()}
    assert front <= left and not extra.path.exists()
    assert all(layout.artifacts.joinpath(s + ".onnx").is_file() for s in stems)
    assert layout.baseline.is_file()


def test_a_bad_size_is_one_line_and_exit_2(files):
    for args in (
        ["cache", "prune", "--max", "much"],
        [
            "search",
            "--workload",
            "digits",
            "--space",
            str(files / "space.yaml"),
            "--profile",
            str(files / "profile.yaml"),
            "--study",
            "badsize",
            "--cache-max",
            "a lot",
        ],
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "cannot read" in result.output and "Traceback" not in result.output


def test_a_search_that_keeps_running_out_of_space_ends_with_one_line_and_exit_2(files, monkeypatch, digits):
    def artifact(self, cfg, stage=lambda s: None):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.cache.artifacts / "a.onnx"))

    monkeypatch.setattr(Compressor, "artifact", artifact)
    result = CliRunner().invoke(
        app,
        [
            "search",
            "--workload",
            "digits",
            "--space",
            str(files / "space.yaml"),
            "--profile",
            str(files / "profile.yaml"),
            "--study",
            "diskfull",
            "--trials",
            "6",
            "--no-polish",
            "--no-sensitivity",
            "--cache-max",
            "1GB",
        ],
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if "search stopped" in line]
    assert len(lines) == 1 and "ran out of disk space in a row" in lines[0] and "Traceback" not in result.output
    assert result.output.count("no space left on device writing") >= 3  # each failed trial's one line
    monkeypatch.setattr(Compressor, "baseline", lambda self: artifact(self, None))  # outside any trial
    result = CliRunner().invoke(
        app,
        [
            "search",
            "--workload",
            "digits",
            "--space",
            str(files / "space.yaml"),
            "--profile",
            str(files / "profile.yaml"),
            "--study",
            "diskfull2",
        ],
    )
    assert result.exit_code == 2 and "no space left on device writing" in result.output, result.output
    assert "Traceback" not in result.output
