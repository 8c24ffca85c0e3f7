"""Shared fixtures: a per-session AUTOCL_HOME, the tiny `digits` workload, fast spaces and profiles."""

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
    # the minilm workload as before its distillation corpus: its teacher embeddings of 4,096 sentences
    # would be recomputed in every session's fresh cache (tests that need the corpus ask for it)
    os.environ.setdefault("AUTOCL_MINILM_DISTILL_SENTENCES", "1536")
    return home


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
