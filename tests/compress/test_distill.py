"""Distillation: the embedding loss measures what it claims, schedules shape the learning rate, and
the teacher's intermediate features are computed once per batch and reused."""

import numpy as np
import pytest
import torch

from autocl.compress.distill import (
    SIMILARITY_TEMPERATURE, TeacherFeatureCache, distill, embedding_kd_loss, feature_loss, kd_loss, lr_lambda,
    task_loss, teacher_logits,
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


@pytest.fixture
def one_training_thread(monkeypatch):
    # two torch threads on a busy 2-core box spin against each other: these short runs took 10x longer
    monkeypatch.setenv("AUTOCL_TRAIN_THREADS", "1")


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
def test_the_temperature_reaches_the_loss_distill_trains_with(digits, output_kind, low, high, one_training_thread):
    # neither temperature is 1: a loss that ignores the configured T trains two identical students
    same = _distilled(digits, low, output_kind)
    assert torch.equal(same, _distilled(digits, low, output_kind))  # distillation is deterministic
    other = _distilled(digits, high, output_kind)
    assert (same - other).abs().max().item() > 1e-3, f"{output_kind}: T={low} and T={high} trained the same student"


def test_a_trial_s_temperature_reaches_the_student_it_builds(digits, one_training_thread):
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


# Reference formulas in float64 numpy, written from the module docstring, independent of torch's
# functional API: the losses must equal them on rows of uneven norms (a normalization on the wrong
# axis, a sign or a mean in place of a sum changes the value).

def _log_softmax(a):
    a = a - a.max(axis=1, keepdims=True)
    return a - np.log(np.exp(a).sum(axis=1, keepdims=True))


def _unit(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def _rows(seed: int, n: int = 6, d: int = 5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) * rng.uniform(0.2, 3.0, size=(n, 1))


def _embedding_reference(s, t, temperature, alpha):
    cos = 1.0 - (_unit(s) * _unit(t)).sum(axis=1).mean()
    if len(s) < 2:
        return cos
    off = ~np.eye(len(s), dtype=bool)

    def log_p(e):  # each row's similarity distribution over the other rows
        sim = _unit(e) @ _unit(e).T / temperature
        return _log_softmax(sim[off].reshape(len(e), -1))

    lt, ls = log_p(t), log_p(s)
    kl = (np.exp(lt) * (lt - ls)).sum(axis=1).mean()
    return alpha * kl + (1.0 - alpha) * cos


@pytest.mark.parametrize("n", [6, 2, 1])
def test_embedding_loss_equals_its_formula(n):
    s, t = _rows(0, n), _rows(1, n)
    for temperature, alpha in [(0.1, 0.3), (0.5, 1.0), (0.05, 0.0)]:
        got = embedding_kd_loss(torch.tensor(s), torch.tensor(t), temperature=temperature, alpha=alpha)
        assert got.item() == pytest.approx(_embedding_reference(s, t, temperature, alpha), rel=1e-9, abs=1e-12)


def test_logit_distillation_loss_equals_its_formula():
    s, t = _rows(2, 6, 4), _rows(3, 6, 4)
    labels = np.array([0, 1, 2, 3, 1, 0])
    for temperature, alpha in [(4.0, 0.7), (1.5, 0.2)]:
        ls, lt = _log_softmax(s / temperature), _log_softmax(t / temperature)
        soft = (np.exp(lt) * (lt - ls)).sum(axis=1).mean() * temperature ** 2
        hard = -_log_softmax(s)[np.arange(6), labels].mean()
        got = kd_loss(torch.tensor(s), torch.tensor(t), torch.tensor(labels), temperature, alpha)
        assert got.item() == pytest.approx(alpha * soft + (1 - alpha) * hard, rel=1e-9)


def test_task_losses_equal_their_formulas():
    out, targets = _rows(4), _rows(5)
    # embeddings: in-batch contrastive, row i must pick the teacher's row i among all of them
    logits = _unit(out) @ _unit(targets).T / SIMILARITY_TEMPERATURE
    expected = -np.diag(_log_softmax(logits)).mean()
    assert task_loss("embedding", torch.tensor(out), torch.tensor(targets)).item() == pytest.approx(expected, rel=1e-9)
    labels = np.array([4, 0, 1, 2, 3, 4])
    expected = -_log_softmax(out)[np.arange(6), labels].mean()
    assert task_loss("logits", torch.tensor(out), torch.tensor(labels)).item() == pytest.approx(expected, rel=1e-9)


def _attention_reference(x):
    a = (x ** 2).mean(axis=1).reshape(len(x), -1) if x.ndim == 4 else (x ** 2).mean(axis=-1)
    return _unit(a)


def test_feature_loss_equals_its_formula_layer_by_layer():
    rng = np.random.default_rng(6)
    t = {"missing": rng.normal(size=(2, 3)),  # the student has no such output: skipped, not the end
         "conv": rng.normal(size=(2, 8, 4, 4)), "tokens": rng.normal(size=(2, 5, 6)), "same": 3 * rng.normal(size=(2, 3, 4))}
    s = {"conv": rng.normal(size=(2, 4, 4, 4)), "tokens": rng.normal(size=(2, 5, 3)),
         "same": t["same"] + rng.normal(size=(2, 3, 4)), "extra": rng.normal(size=(2, 3))}
    expected = np.mean([((_attention_reference(s[k]) - _attention_reference(t[k])) ** 2).mean() for k in ("conv", "tokens")]
                       + [((s["same"] - t["same"]) ** 2).mean() / ((t["same"] ** 2).mean() + 1e-8)])
    got = feature_loss({k: torch.tensor(v) for k, v in s.items()}, {k: torch.tensor(v) for k, v in t.items()})
    assert got.item() == pytest.approx(expected, rel=1e-9)
    assert feature_loss({}, {k: torch.tensor(v) for k, v in t.items()}).item() == 0.0


def test_feature_taps_record_the_first_output_of_the_named_modules():
    from autocl.compress.distill import FeatureTaps

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LSTM(4, 3, batch_first=True))
    taps = FeatureTaps(model, ("0", "1", "absent"))
    out, _ = model(torch.randn(2, 5, 4))
    taps.close()
    assert set(taps.values) == {"0", "1"} and torch.equal(taps.values["1"], out)  # an LSTM returns (out, state)


def test_the_teacher_feature_cache_keeps_batches_up_to_its_byte_budget(digits):
    x = torch.from_numpy(np.ascontiguousarray(digits.train[0][:96]))
    batches = [torch.arange(i, i + 32) for i in (0, 32, 64)]
    probe = TeacherFeatureCache(digits.model, ("stages.0", "stages.1"))
    size = sum(v.numel() * v.element_size() for v in probe(batches[0], (x[batches[0]],)).values())
    cache = TeacherFeatureCache(digits.model, ("stages.0", "stages.1"), max_bytes=2 * size)  # room for two batches
    for idx in batches + batches:
        cache(idx, (x[idx],))
    assert cache.hits == 2  # the first two are kept, exactly filling the budget; the third is not


@pytest.mark.parametrize("teacher_targets", [False, True])
def test_targets_that_are_the_teacher_s_outputs_are_read_not_recomputed(teacher_targets, tmp_path):
    from torch import nn

    from autocl.compress import Compressor
    from autocl.workloads import Workload

    torch.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((40, 6)).astype(np.float32)
    stored = np.random.default_rng(1).standard_normal((40, 4)).astype(np.float32)  # not what the model computes
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4))
    w = Workload(name="emb", model=model, example_input=torch.from_numpy(x[:1]), train=(x, stored),
                 validation=(x[:8], stored[:8]), output_kind="embedding", teacher_targets=teacher_targets)
    soft = Compressor(w, tmp_path)._teacher_outputs()
    with torch.no_grad():
        computed = model(torch.from_numpy(x))
    assert torch.allclose(soft, torch.from_numpy(stored) if teacher_targets else computed)


def test_early_stop_holds_out_a_tenth_of_the_rows_and_at_most_max_held_out(monkeypatch):
    from autocl.compress import distill as d

    seen = []
    monkeypatch.setattr(d, "_held_out_loss", lambda student, x, y, soft, idx, *a: seen.append(len(idx)) or 0.0)
    model = torch.nn.Linear(3, 2)
    for rows, held in ((300, 30), (20 * d.MAX_HELD_OUT, d.MAX_HELD_OUT)):
        x = torch.randn(rows, 3)
        d.distill(model, (x,), torch.zeros(rows, dtype=torch.long), torch.randn(rows, 2),
                  DistillConfig(steps=2, batch_size=8, early_stop=True))
        assert seen[-1] == held
