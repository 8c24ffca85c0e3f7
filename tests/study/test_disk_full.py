"""A full disk: trials fail with one line naming the file and the space left, the search stops after
three in a row, the study database stays whole, and the front and export work afterwards."""

import errno
import os
import shutil
import sqlite3
import subprocess

import optuna
import pytest
from typer.testing import CliRunner

from autocl.compress import Compressor
from autocl.errors import StudyError
from autocl.study import run_search
from autocl.study._disk import DiskFullRun, disk_full
from autocl.workloads import load_workload

COMPLETE, FAIL = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL


def test_a_full_disk_is_recognized_through_the_causes(tmp_path):
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.onnx"))
    line = disk_full(full, tmp_path)
    assert line is not None and str(tmp_path / "x.onnx") in line and "free there" in line
    try:
        try:
            raise full
        except OSError as exc:
            raise RuntimeError("export failed") from exc
    except RuntimeError as wrapped:
        assert disk_full(wrapped, tmp_path) == line
    assert "database or disk is full" not in (disk_full(RuntimeError("database or disk is full"), tmp_path) or "x")
    assert disk_full(ValueError("a bug"), tmp_path) is None
    assert disk_full(OSError(errno.EACCES, "Permission denied"), tmp_path) is None


def test_three_in_a_row_stop_and_a_success_resets_the_count():
    run = DiskFullRun(limit=3)
    run.failed(1, "no space")
    run.failed(2, "no space")
    run.succeeded()
    run.failed(4, "no space")
    run.failed(5, "no space")
    with pytest.raises(StudyError, match=r"trials 4, 5, 6 ran out of disk space in a row"):
        run.failed(6, "no space")


def _integrity(db) -> str:
    with sqlite3.connect(db) as con:
        return con.execute("PRAGMA integrity_check").fetchone()[0]


def test_injected_enospc_fails_trials_with_one_line_and_stops_the_search(
    digits, fast_space, fast_profile, tmp_path, monkeypatch
):
    url = f"sqlite:///{tmp_path / 'inj.db'}"
    real, calls = Compressor.artifact, []

    def artifact(self, cfg, stage=lambda s: None):
        calls.append(cfg)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.cache.artifacts / "x.onnx"))
        return real(self, cfg, stage)

    monkeypatch.setattr(Compressor, "artifact", artifact)
    with pytest.raises(StudyError, match=r"search stopped: trials 1, 2, 3 ran out of disk space in a row") as info:
        run_search(
            digits,
            fast_space,
            fast_profile,
            study_name="inj",
            storage=url,
            n_trials=8,
            polish=False,
            remeasure=False,
            sensitivity=False,
            recipes=False,
        )
    assert "\n" not in str(info.value) and "everything measured is saved" in str(info.value)
    study = optuna.load_study(study_name="inj", storage=url)
    assert [t.state for t in study.trials] == [COMPLETE, FAIL, FAIL, FAIL]  # no fourth trial started
    for t in study.trials[1:]:
        assert "no space left on device writing" in t.user_attrs["error"] and "x.onnx" in t.user_attrs["error"]
        assert "traceback" not in t.user_attrs  # a full disk is not a bug
    assert _integrity(tmp_path / "inj.db") == "ok"


@pytest.fixture
def small_home(tmp_path, autocl_home, digits):
    """A 6 MB tmpfs as AUTOCL_HOME, with the digits teacher already in its cache."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root; the injected ENOSPC test covers the logic")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); the injected ENOSPC test covers the logic")
    shutil.copytree(autocl_home / "cache" / "teachers", mount / "cache" / "teachers")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_home_that_fills_up_loses_nothing(small_home, fast_space, fast_profile, tmp_path, monkeypatch):
    from autocl.cli import app

    monkeypatch.setenv("AUTOCL_HOME", str(small_home))
    db = small_home / "full.db"
    url = f"sqlite:///{db}"
    kw = dict(study_name="full", storage=url, polish=False, remeasure=False, sensitivity=False, recipes=False)
    first = run_search(load_workload("digits"), fast_space, fast_profile, n_trials=2, **kw)
    done = [t.number for t in first.study.trials if t.state == COMPLETE]
    assert done
    # leave room for the database's small writes, not for a student, and for at most one of the 19 KB
    # artifacts of a student the first run made (with 96 KB, two of them once fitted between failures
    # and the search never saw enough failures in a row)
    filler = small_home / "filler"
    filler.write_bytes(b"\0" * (shutil.disk_usage(small_home).free - 32 * 1024))
    with pytest.raises(Exception) as info:
        run_search(load_workload("digits"), fast_space, fast_profile, n_trials=6, **kw)
    message = str(info.value)
    # the cache and the database share the disk: trials fail until the database cannot take a write either
    assert isinstance(info.value, StudyError) and "\n" not in message, message
    assert "ran out of disk space in a row" in message or (
        "the study database cannot be written (no space left on device writing" in message
    ), message
    assert _integrity(db) == "ok"
    study = optuna.load_study(study_name="full", storage=url)
    assert set(done) <= {t.number for t in study.trials if t.state == COMPLETE}  # everything measured stays
    failed = [t for t in study.trials if t.state == FAIL]
    assert all("no space left on device writing" in t.user_attrs.get("error", "") for t in failed), [
        t.user_attrs.get("error") for t in failed
    ]
    filler.unlink()
    runner = CliRunner()
    front = runner.invoke(app, ["front", "--study", "full", "--storage", url, "--format", "json"])
    assert front.exit_code == 0, front.output
    out = runner.invoke(
        app,
        # what is checked is that the study survived; a tiny model's latency on a busy machine is not
        ["export", "--study", "full", "--storage", url, "--trial", str(done[0]), "-o", str(tmp_path / "bundle"),
         "--latency-tolerance", "100"],
    )
    assert out.exit_code == 0, out.output
    assert (tmp_path / "bundle" / "model.onnx").is_file()
