"""Shared fixtures: a per-session AUTOCL_HOME, the tiny `digits` workload, fast spaces and profiles.

Under pytest-xdist (``make test`` runs ``-n auto --dist loadfile``) each worker is a session of its
own, with its own AUTOCL_HOME: the digits teacher is trained once for all of them (see
``_share_digits_teacher``). ``loadfile`` runs each test file on one worker, so its module fixtures (a
search, a server) are built once; the session's shared searched study (``tests/report/studies.py``) is
built once per worker that needs it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY_PROFILE_YAML = """
name: tiny-cpu
threads: 1
batch_size: 4
measurement: {warmup: 2, repeats: 5, min_repeats: 3, max_seconds: 0.5}
"""
"""A fast profile for tests that run autocl as a separate process (the server, workers)."""


@pytest.fixture(scope="session", autouse=True)
def autocl_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("autocl-home")
    os.environ["AUTOCL_HOME"] = str(home)
    # AUTOCL_TEST_TEACHERS: a folder of already trained teachers (cache/teachers/*.pt) to start from,
    # so repeated runs (`make mutation`) skip training them; students and artifacts are built afresh
    teachers = os.environ.get("AUTOCL_TEST_TEACHERS")
    if teachers and Path(teachers).is_dir():
        shutil.copytree(teachers, home / "cache" / "teachers")
    os.environ.setdefault("AUTOCL_TRAIN_THREADS", "2")
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # the run's folder, above every worker's own (pytest-of-<user>/pytest-<n>/popen-gw<i>)
        _share_digits_teacher(tmp_path_factory.getbasetemp().parent / "shared-teachers", home)
    # the minilm workload as before its distillation corpus: its teacher embeddings of 4,096 sentences
    # would be recomputed in every session's fresh cache (tests that need the corpus ask for it)
    os.environ.setdefault("AUTOCL_MINILM_DISTILL_SENTENCES", "1536")
    return home


def _share_digits_teacher(shared: Path, home: Path) -> None:
    """Train the digits teacher (which nearly every test file needs) once for all xdist workers: the
    first worker here trains it under a lock, the others wait, and each copies it into its own home."""
    import fcntl  # POSIX: the workers' lock

    from autocl.workloads._digits import digits

    shared.mkdir(exist_ok=True)
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "teachers" / "digits-resnet-v1.pt").is_file():
            own = home / "cache" / "teachers"
            if own.is_dir():  # AUTOCL_TEST_TEACHERS already gave it
                shutil.copytree(own, shared / "teachers", dirs_exist_ok=True)
            digits(shared)  # trains into <shared>/teachers/ unless it is there
        shutil.copytree(shared / "teachers", home / "cache" / "teachers", dirs_exist_ok=True)


@pytest.fixture(scope="session")
def digits(autocl_home):
    from autocl.workloads import load_workload

    return load_workload("digits")


@pytest.fixture(scope="session")
def fast_profile():
    from autocl.hardware import profile_from_dict

    return profile_from_dict({"name": "test-cpu", "threads": 1, "batch_size": 4,
                              "measurement": {"warmup": 2, "repeats": 5, "min_repeats": 3, "max_seconds": 0.5}})


@pytest.fixture(scope="session")
def fast_space():
    from autocl.space import SearchSpace

    return SearchSpace.model_validate({
        "name": "test",
        "prune": {"ratio": [0.0, 0.5]},
        "distill": {"temperature": [2.0, 4.0], "alpha": 0.5, "steps": 8, "batch_size": 32,
                    "polish": {"epochs": 0.2, "every": 4}},
        "quant": {"precisions": ["fp32", "int8"], "calibration_samples": 32},
    })
