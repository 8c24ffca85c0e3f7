"""A fidelity ladder's student resumes, never retrains: continuing a run from its checkpoint gives
the student one uninterrupted run gives; adaptive batch norm re-estimates statistics only."""

from __future__ import annotations

import copy

import torch

from autocl.compress import Compressor
from autocl.compress.adaptive_bn import adapt_batchnorm
from autocl.compress.distill import distill, held_out_split, lr_lambda
from autocl.config import CompressionConfig, DistillConfig, PruneConfig


def _net() -> torch.nn.Module:
    torch.manual_seed(1)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(16, 3)
    )


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=g)
    y = torch.randint(0, 3, (200,), generator=g)
    return (x,), y, torch.randn(200, 3, generator=g)


def test_a_resumed_run_is_the_uninterrupted_run():
    x, y, soft = _data()
    ladder = DistillConfig(steps=9, ladder_steps=9, batch_size=32, lr=1e-2)
    whole = distill(_net(), x, y, soft, ladder)
    states = []
    half = distill(_net(), x, y, soft, ladder.model_copy(update={"steps": 4}), on_end=states.append)
    assert states[0].step == 4
    resumed = distill(half.train(), x, y, soft, ladder, resume=states[0])
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name
    # without the optimizer's state, the data position and the schedule, the run differs
    restarted = distill(copy.deepcopy(half).train(), x, y, soft, ladder.model_copy(update={"steps": 5}))
    assert not torch.allclose(whole[0].weight, restarted[0].weight, atol=1e-6)


def test_one_schedule_spans_the_ladder_and_rows_are_held_out():
    rung = lr_lambda(DistillConfig(steps=10, ladder_steps=40, schedule="cosine"))
    alone = lr_lambda(DistillConfig(steps=10, schedule="cosine"))
    assert rung(9) > 0.8 and alone(9) < 0.05
    held, rows = held_out_split(200, 0)
    assert len(held) == 20 and len(rows) == 180 and not set(held.tolist()) & set(rows.tolist())


def test_adaptive_batch_norm_re_estimates_the_statistics_on_the_rows():
    net = _net().eval()
    (x,), _, _ = _data()
    assert adapt_batchnorm(net, (x,), rows=128, batch_size=128) == 1
    h = net[0](x[:128])
    assert torch.allclose(net[1].running_mean, h.mean(0), atol=1e-5)
    assert torch.allclose(net[1].running_var, h.var(0, unbiased=True), atol=1e-4)
    assert net[1].momentum == 0.1 and not net.training
    assert adapt_batchnorm(torch.nn.Linear(2, 2), (x,)) == 0


def test_a_promoted_student_resumes_from_its_rung_checkpoint(digits, tmp_path):
    def cfg(steps: int) -> CompressionConfig:
        return CompressionConfig(
            prune=PruneConfig(ratio=0.5),
            distill=DistillConfig(steps=steps, ladder_steps=12, batch_size=32, lr=2e-3),
        )

    ladder = Compressor(digits, tmp_path / "a")
    first = ladder.student(cfg(4))
    assert first.fidelity["resumed_from"] is None and [s for s, _ in first.fidelity["curve"]] == [0, 4]
    assert first.fidelity["adapted_metric"] is not None and first.fidelity["metric"] == first.fidelity["curve"][-1][1]
    key = ladder.ladder_key(cfg(4))
    assert key == ladder.student_key(cfg(12)) and list(ladder.cache.checkpoints(key)) == [4]
    second = ladder.student(cfg(12))
    assert second.fidelity["resumed_from"] == 4 and [s for s, _ in second.fidelity["curve"]] == [0, 4, 12]
    assert list(ladder.cache.checkpoints(key)) == [4, 12]
    # the same student trained in one go, in an empty cache
    direct = Compressor(digits, tmp_path / "b").student(cfg(12))
    assert direct.fidelity["resumed_from"] is None
    a, b = torch.load(second.weights_path), torch.load(direct.weights_path)
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)
    # a damaged checkpoint is never resumed from: the student trains from step 0
    path = ladder.cache.checkpoint(key, 4)
    path.write_bytes(path.read_bytes()[:-10])
    fresh = Compressor(digits, tmp_path / "a")
    fresh.build_student(cfg(12))
    assert fresh.fidelity["resumed_from"] is None


def test_ladder_checkpoints_are_cache_entries_a_budget_evicts_and_a_promotion_then_retrains(digits, tmp_path):
    from autocl.compress import CHECKPOINT, CacheBudget, cache_usage, checkpoint_key

    def cfg(steps: int) -> CompressionConfig:
        return CompressionConfig(
            prune=PruneConfig(ratio=0.5),
            distill=DistillConfig(steps=steps, ladder_steps=12, batch_size=32, lr=2e-3),
        )

    comp = Compressor(digits, tmp_path)
    first = comp.student(cfg(4))
    key = comp.ladder_key(cfg(4))
    assert first.fidelity["ladder_key"] == key  # the trial records it: a waiting promotion keeps it
    entries = [e for e in comp.cache.entries() if e.kind == CHECKPOINT]
    assert [e.key for e in entries] == [checkpoint_key(key, 4)] and entries[0].student_key == key
    assert entries[0].size == sum(p.stat().st_size for p in entries[0].files) and len(entries[0].files) == 2
    # a promotion under a budget with room for nothing more: it holds the checkpoint it resumes from
    budget = CacheBudget(cache_usage(tmp_path))
    held = Compressor(digits, tmp_path, budget=budget)
    with held.holding():
        second = held.student(cfg(12))
    assert second.fidelity["resumed_from"] == 4
    assert budget.evicted and checkpoint_key(key, 4) not in {e.key for e in budget.evicted}  # held while used
    budget.enforce(tmp_path)  # the next write, once nobody holds it: it goes like any entry
    assert checkpoint_key(key, 4) in {e.key for e in budget.evicted}
    assert 4 not in comp.cache.checkpoints(key)
    # with its checkpoints gone, the next promotion of that student distils from step 0
    for e in [e for e in comp.cache.entries() if e.kind == CHECKPOINT]:
        comp.cache.remove(e)
    assert not (tmp_path / comp.cache.folder.name / "checkpoints" / key).exists()
    again = Compressor(digits, tmp_path)
    again.build_student(cfg(12))
    assert again.fidelity["resumed_from"] is None
