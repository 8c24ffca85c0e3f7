"""The service shows why a job stopped on a full disk: the search's one line, or, when the worker
could not even write its outcome, the disk that is full."""

import json
import shutil
from collections import namedtuple

from autocl.errors import StudyError
from autocl.service import _jobs, _worker

LINE = "search stopped: trials 4, 5, 6 ran out of disk space in a row (the last: no space left on device writing x)"


def test_the_workers_outcome_carries_the_one_line(tmp_path, monkeypatch):
    (tmp_path / _worker.RUN_FILE).write_text(json.dumps({"study": "s", "storage": "sqlite://", "n_trials": 1}))

    def stopped(job_dir, run, reporter):
        raise StudyError(LINE)

    monkeypatch.setattr(_worker, "_search", stopped)
    assert _worker.main(tmp_path) == 2
    outcome = json.loads((tmp_path / _worker.EXIT_FILE).read_text())
    assert outcome["code"] == 2 and outcome["reason"] == LINE


def test_an_outcome_lost_to_a_full_disk_is_named(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9, 0))
    reason = _jobs._disk_full_reason(tmp_path)
    assert "no space left on device" in reason and str(tmp_path) in reason and "resume" in reason
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 0, 10**9))
    assert _jobs._disk_full_reason(tmp_path) == ""
