"""Distillation: the embedding loss measures what it claims, schedules shape the learning rate, and
the teacher's intermediate features are computed once per batch and reused."""

import pytest
import torch

from autocl.compress.distill import (
    TeacherFeatureCache, distill, embedding_kd_loss, feature_loss, lr_lambda, task_loss, teacher_logits,
)
from autocl.config import DistillConfig


def test_embedding_loss_is_zero_for_the_teacher_and_grows_with_distortion():
    torch.manual_seed(0)
    t = torch.nn.functional.normalize(torch.randn(16, 32), dim=-1)
    same = embedding_kd_loss(t.clone(), t, temperature=0.05, alpha=0.5)
    near = embedding_kd_loss(t + 0.05 * torch.randn_like(t), t, temperature=0.05, alpha=0.5)
    far = embedding_kd_loss(torch.randn_like(t), t, temperature=0.05, alpha=0.5)
    assert abs(same.item()) < 1e-5 and 0 < near.item() < far.item()


def test_the_contrastive_task_loss_has_gradients_at_the_teacher():
    # Taylor importance needs a non-zero gradient even before anything is pruned
    t = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    s = t.clone().requires_grad_(True)
    task_loss("embedding", s, t).backward()
    assert s.grad.abs().sum() > 0


def test_schedules_warm_up_then_decay():
    cos = lr_lambda(DistillConfig(steps=20, warmup_steps=4, schedule="cosine"))
    lin = lr_lambda(DistillConfig(steps=20, warmup_steps=0, schedule="linear"))
    const = lr_lambda(DistillConfig(steps=20, schedule="constant"))
    assert cos(0) < cos(1) < cos(3) == 1.0 and cos(19) < 0.05
    assert lin(0) == 1.0 and abs(lin(10) - 0.5) < 1e-9
    assert const(0) == const(19) == 1.0


def test_feature_loss_matches_widths_it_can_and_attention_maps_where_pruning_changed_them():
    t = {"a": torch.randn(2, 8, 4, 4)}
    assert feature_loss({"a": t["a"].clone()}, t).item() < 1e-8
    narrower = feature_loss({"a": t["a"][:, :4]}, t)  # pruned channels: compared by attention map
    assert torch.isfinite(narrower) and narrower.item() >= 0


def test_teacher_features_are_cached_per_batch_and_distillation_uses_them(digits):
    import numpy as np

    x = (torch.from_numpy(np.ascontiguousarray(digits.train[0][:64])),)
    y = torch.from_numpy(digits.train[1][:64]).long()
    soft = teacher_logits(digits.model, x)
    cache = TeacherFeatureCache(digits.model, ("stages.0", "stages.1"))
    cfg = DistillConfig(steps=4, batch_size=32, feature_weight=1.0)
    import copy

    for _ in range(2):  # the second student sees the same batches: all from the cache
        distill(copy.deepcopy(digits.model), x, y, soft, cfg, teacher_features=cache)
    assert cache.hits == 4


def _distilled(digits, temperature: float, output_kind: str) -> torch.Tensor:
    """A student (the teacher with seeded noise on every weight) distilled by ``distill()`` itself at
    ``temperature``, all else fixed; returns its outputs on validation rows."""
    import copy

    import numpy as np

    x = (torch.from_numpy(np.ascontiguousarray(digits.train[0][:128])),)
    y = torch.from_numpy(digits.train[1][:128]).long()
    soft = teacher_logits(digits.model, x)  # an embedding workload's teacher outputs are its vectors
    student = copy.deepcopy(digits.model)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(0.2 * p.abs().mean() * torch.randn(p.shape, generator=gen))
    cfg = DistillConfig(temperature=temperature, alpha=1.0, steps=6, batch_size=32, lr=3e-3, schedule="constant")
    distill(student, x, y, soft, cfg, output_kind=output_kind)
    with torch.no_grad():
        return student(torch.from_numpy(np.ascontiguousarray(digits.validation[0][:64])))


@pytest.mark.parametrize("output_kind, low, high", [("logits", 2.0, 6.0), ("embedding", 0.05, 0.5)])
def test_the_temperature_reaches_the_loss_distill_trains_with(digits, output_kind, low, high):
    # neither temperature is 1: a loss that ignores the configured T trains two identical students
    same = _distilled(digits, low, output_kind)
    assert torch.equal(same, _distilled(digits, low, output_kind))  # distillation is deterministic
    other = _distilled(digits, high, output_kind)
    assert (same - other).abs().max().item() > 1e-3, f"{output_kind}: T={low} and T={high} trained the same student"


def test_a_trial_s_temperature_reaches_the_student_it_builds(digits):
    # through the pipeline: two configurations that differ only in T give two students, two cache keys
    import numpy as np

    from autocl.compress import Compressor
    from autocl.config import CompressionConfig
    from autocl.runtime import cache_dir

    compressor = Compressor(digits, cache_dir())
    x = torch.from_numpy(np.ascontiguousarray(digits.validation[0][:64]))
    outs, keys = [], []
    for t in (2.0, 6.0):
        cfg = CompressionConfig.model_validate({"prune": {"ratio": 0.5},
                                                "distill": {"temperature": t, "alpha": 1.0, "steps": 6, "batch_size": 32}})
        keys.append(compressor.student_key(cfg))
        student = compressor.build_student(cfg)  # prunes (traced with autograd), then distills
        with torch.no_grad():
            outs.append(student(x))
    assert keys[0] != keys[1]
    assert (outs[0] - outs[1]).abs().max().item() > 1e-3
