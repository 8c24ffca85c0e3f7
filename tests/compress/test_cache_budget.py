"""The cache budget: entries, least-recently-used eviction, holds, and students stored once."""

import os
import time

import onnx
import pytest
import torch

from autocl.compress import (
    ARTIFACT,
    STUDENT,
    CacheBudget,
    CacheLayout,
    Compressor,
    cache_usage,
    evict,
    parse_size,
    plan_eviction,
)
from autocl.compress._cache import STUDENT_FILES
from autocl.config import CompressionConfig, QuantConfig
from autocl.errors import ConfigError


def test_sizes_are_read_in_decimal_and_binary_units():
    assert parse_size("1GB") == 10**9 and parse_size("500mb") == 5 * 10**8
    assert parse_size("1.5GiB") == int(1.5 * 2**30) and parse_size("2048") == 2048
    with pytest.raises(ConfigError, match="--cache-max"):
        parse_size("lots")
    with pytest.raises(ConfigError, match="AUTOCL_CACHE_MAX"):
        parse_size("1 parsec", field="AUTOCL_CACHE_MAX")


def _fake_cache(root, ages):
    """A workload cache with a baseline, a teacher, one student per age and an artifact of each."""
    layout = CacheLayout.of(root, "toy", "k" * 16)
    layout.folder.mkdir(parents=True)
    layout.baseline.write_bytes(b"b" * 5000)
    (root / "teachers").mkdir()
    (root / "teachers" / "toy.pt").write_bytes(b"t" * 5000)
    now = time.time()
    for i, age in enumerate(ages):
        key = f"{i:016x}"
        folder = layout.student_folder(key)
        folder.mkdir(parents=True)
        for name in ("student.pt", "student.pt.sha256", "info.json"):
            (folder / name).write_bytes(b"s" * 1000)
        os.utime(layout.student_info(key), (now - age, now - age))
        art = layout.artifact(key, "q" * 16)
        art.parent.mkdir(parents=True, exist_ok=True)
        art.write_bytes(b"a" * 2000)
        art.with_name(art.name + ".sha256").write_text("x")
        os.utime(art, (now - age, now - age))
    return layout


def test_the_least_recently_used_go_first_and_baseline_and_teachers_stay(tmp_path):
    layout = _fake_cache(tmp_path, ages=[300, 100, 200])
    entries = layout.entries()
    assert {(e.kind, e.key) for e in entries} >= {(STUDENT, f"{0:016x}"), (ARTIFACT, f"{0:016x}-{'q' * 16}")}
    total = cache_usage(tmp_path)
    plan = plan_eviction(tmp_path, total - 4000)  # the two entries of student 0 (the oldest) are enough
    assert [e.key for e in plan.remove] == [f"{0:016x}-{'q' * 16}", f"{0:016x}"]
    removed = evict(plan)
    assert len(removed) == 2 and cache_usage(tmp_path) <= total - 4000
    assert not layout.student_folder(f"{0:016x}").exists()
    assert layout.baseline.is_file() and (tmp_path / "teachers" / "toy.pt").is_file()
    everything = plan_eviction(tmp_path, 0)
    evict(everything)
    assert layout.baseline.is_file() and (tmp_path / "teachers" / "toy.pt").is_file()
    assert layout.entries() == []


def test_protected_and_held_entries_stay_and_foreign_files_are_never_deleted(tmp_path):
    layout = _fake_cache(tmp_path, ages=[300, 200, 100])
    foreign = layout.student_folder(f"{1:016x}") / "my-notes.txt"
    foreign.write_text("not autocl's")
    with layout.hold(STUDENT, f"{2:016x}"):
        plan = plan_eviction(tmp_path, 0, keep=lambda e: e.student_key == f"{0:016x}")
        assert {e.student_key for e in plan.protected} == {f"{0:016x}"}
        assert [e.key for e in plan.held] == [f"{2:016x}"]
        evict(plan)
    keys = {(e.kind, e.key) for e in layout.entries()}
    assert (STUDENT, f"{0:016x}") in keys and (STUDENT, f"{2:016x}") in keys
    assert (STUDENT, f"{1:016x}") not in keys  # its own files went ...
    assert foreign.is_file()  # ... the user's file stayed, and so did its folder
    assert set(STUDENT_FILES) & {p.name for p in foreign.parent.iterdir()} == set()


def test_a_budget_evicts_what_no_trial_holds_and_an_evicted_artifact_is_rebuilt_alike(digits, tmp_path):
    fp32 = CompressionConfig(quant=QuantConfig(default="fp32"))
    int8 = CompressionConfig(quant=QuantConfig(default="int8", calibration_samples=32))
    plain = Compressor(digits, tmp_path)
    first = plain.artifact(fp32)
    fixed = cache_usage(tmp_path)  # teacher-free cache: baseline, the student, one artifact
    budget = CacheBudget(fixed)  # room for nothing more
    comp = Compressor(digits, tmp_path, budget=budget)
    with comp.holding():
        second = comp.artifact(int8)
        assert second.path.is_file()  # held by the running "trial": not evicted under it
    assert not first.path.exists() and first.path in {e.files[0] for e in budget.evicted}
    again = comp.artifact(fp32)  # evicted: rebuilt on demand, verified by the same sha256
    assert again.sha256 == first.sha256 and again.student.reused


def test_a_student_stores_its_weights_once_and_its_graph_is_rebuilt_from_them(digits, tmp_path):
    cfg = CompressionConfig.from_dict({"prune": {"ratio": 0.5}, "distill": {"steps": 2, "batch_size": 32}})
    comp = Compressor(digits, tmp_path)
    student = comp.student(cfg)
    built = onnx.load(str(student.onnx_path))
    files = {p.name for p in comp.cache.student_folder(student.key).iterdir()}
    assert files == {"student.pt", "student.pt.sha256", "info.json"}  # no second copy as a graph
    weights = sum(t.numel() * t.element_size() for t in torch.load(student.weights_path).values())
    entry = next(e for e in comp.cache.entries() if e.key == student.key)
    assert entry.size < 1.1 * weights + 20_000  # the weights once, plus a small info.json
    assert comp.cache.student_channels(student.key)  # the report's pruning map reads it
    fresh = Compressor(digits, tmp_path)  # another process: no scratch graph at hand
    reused = fresh.student(cfg)
    assert reused.reused and reused.onnx_path is None
    rebuilt = onnx.load(str(fresh.student_graph(reused, cfg)))
    assert [i.raw_data for i in rebuilt.graph.initializer] == [i.raw_data for i in built.graph.initializer]
