"""Distillation: the embedding loss measures what it claims, schedules shape the learning rate, and
the teacher's intermediate features are computed once per batch and reused."""

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
