"""Knowledge distillation: fine-tune the pruned student against the teacher.

* Classifiers (``output_kind="logits"``): alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T))
  + (1 - alpha) * CE(student, labels).
* Embedding models (``output_kind="embedding"``): alpha * KL between the teacher's and the
  student's in-batch similarity distributions softmax(cos(e_i, e_j) / T) (T is a similarity
  temperature, meaningful around 0.02-0.2), + (1 - alpha) * mean(1 - cos(student, teacher)).
* Optional intermediate features (``feature_weight``): normalized MSE between the student's and the
  teacher's outputs of the workload's ``feature_layers``; where pruning changed a feature's width,
  the channel-independent attention map mean(x^2 over channels) is matched instead.

The teacher's final outputs are computed once per search for the whole training set (the data order
is fixed by the seed, so every trial indexes the same rows); intermediate features are computed per
batch under no_grad and kept in a bounded cache, so trials with the same batches reuse them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from autocl.config import DistillConfig
from autocl.runtime import set_torch_threads

SIMILARITY_TEMPERATURE = 0.05
"""In-batch contrastive temperature of the embedding task loss (used by Taylor importance)."""
MAX_HELD_OUT = 512
"""At most this many rows are held out for early stop: checked ten times a run, more would cost more
than the training on a large distillation set, for a loss no more telling."""


def teacher_logits(teacher: nn.Module, x: tuple[torch.Tensor, ...], batch_size: int = 256) -> torch.Tensor:
    """Teacher outputs for all of the inputs ``x`` under no_grad (computed once per search, then reused)."""
    teacher.eval()
    n = len(x[0])
    with torch.no_grad():
        return torch.cat([teacher(*(a[i : i + batch_size] for a in x)) for i in range(0, n, batch_size)])


def kd_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, temperature: float, alpha: float
) -> torch.Tensor:
    t = temperature
    soft = F.kl_div(
        F.log_softmax(student_logits / t, dim=1),
        F.log_softmax(teacher_logits / t, dim=1),
        reduction="batchmean",
        log_target=True,
    ) * (t * t)
    hard = F.cross_entropy(student_logits, labels)
    return alpha * soft + (1.0 - alpha) * hard


def _similarities(e: torch.Tensor, temperature: float) -> torch.Tensor:
    e = F.normalize(e, dim=-1)
    sim = e @ e.T / temperature
    # a row's similarity to itself carries no structure; leave it out of the distribution
    return sim.masked_fill(torch.eye(len(e), dtype=torch.bool, device=e.device), float("-inf"))


def embedding_kd_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float, alpha: float) -> torch.Tensor:
    """Similarity-structure distillation of embeddings (see the module docstring)."""
    cos = 1.0 - F.cosine_similarity(student, teacher, dim=-1).mean()
    if len(student) < 2 or alpha == 0:
        return cos
    log_s = F.log_softmax(_similarities(student, temperature), dim=1)
    log_t = F.log_softmax(_similarities(teacher, temperature), dim=1)
    finite = torch.isfinite(log_t)
    kl = (log_t.exp() * (log_t - log_s)).where(finite, torch.zeros_like(log_t)).sum(1).mean()
    return alpha * kl + (1.0 - alpha) * cos


def task_loss(output_kind: str, out: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The training loss of the workload's task: cross-entropy for classifiers; for embedding models,
    an in-batch contrastive loss against the teacher's embeddings (non-zero even for the teacher
    itself, so it has gradients to rank with)."""
    if output_kind == "embedding":
        logits = F.normalize(out, dim=-1) @ F.normalize(targets, dim=-1).T / SIMILARITY_TEMPERATURE
        return F.cross_entropy(logits, torch.arange(len(out), device=out.device))
    return F.cross_entropy(out, targets.long())


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


class FeatureTaps:
    """Forward hooks that record the outputs of named modules."""

    def __init__(self, model: nn.Module, names: tuple[str, ...]) -> None:
        modules = dict(model.named_modules())
        self.values: dict[str, torch.Tensor] = {}
        self._handles = [modules[n].register_forward_hook(self._hook(n)) for n in names if n in modules]

    def _hook(self, name: str):
        def hook(_module, _inputs, output):
            self.values[name] = _first(output)

        return hook

    def close(self) -> None:
        for h in self._handles:
            h.remove()


def _attention_map(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x.pow(2).mean(1).flatten(1) if x.dim() == 4 else x.pow(2).mean(-1), dim=-1)


def feature_loss(student: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor]) -> torch.Tensor:
    losses = []
    for name, t in teacher.items():
        s = student.get(name)
        if s is None:
            continue
        if s.shape == t.shape:
            losses.append(F.mse_loss(s, t) / (t.pow(2).mean() + 1e-8))
        else:
            losses.append(F.mse_loss(_attention_map(s), _attention_map(t)))
    return torch.stack(losses).mean() if losses else torch.zeros(())


class TeacherFeatureCache:
    """Teacher features per batch (keyed by the batch's row indices), kept up to ``max_bytes``."""

    def __init__(self, teacher: nn.Module, names: tuple[str, ...], max_bytes: int = 512 << 20) -> None:
        self.teacher, self.names, self.max_bytes = teacher, names, max_bytes
        self._store: dict[bytes, dict[str, torch.Tensor]] = {}
        self._bytes = 0
        self.hits = 0

    def __call__(self, idx: torch.Tensor, inputs: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        key = idx.numpy().tobytes()
        if key in self._store:
            self.hits += 1
            return self._store[key]
        taps = FeatureTaps(self.teacher, self.names)
        try:
            with torch.no_grad():
                self.teacher.eval()(*inputs)
        finally:
            taps.close()
        feats = {k: v.detach() for k, v in taps.values.items()}
        size = sum(v.numel() * v.element_size() for v in feats.values())
        if self._bytes + size <= self.max_bytes:
            self._store[key] = feats
            self._bytes += size
        return feats


def lr_lambda(cfg: DistillConfig) -> Callable[[int], float]:
    """Multiplier of the learning rate at each step: linear warm-up, then cosine, linear or constant,
    over ``cfg.steps``, or over ``cfg.ladder_steps`` on a fidelity ladder (one schedule for every rung)."""
    total = cfg.ladder_steps or cfg.steps

    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        span = max(1, total - cfg.warmup_steps)
        done = min(1.0, (step - cfg.warmup_steps) / span)
        if cfg.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * done))
        if cfg.schedule == "linear":
            return 1.0 - done
        return 1.0

    return f


def _output_loss(out, soft, y, cfg: DistillConfig, loss_fn, output_kind: str) -> torch.Tensor:
    if loss_fn is not None:
        return loss_fn(out, soft, y, cfg)
    if output_kind == "embedding":
        return embedding_kd_loss(out, soft, cfg.temperature, cfg.alpha)
    return kd_loss(out, soft, y, cfg.temperature, cfg.alpha)


def _held_out_loss(
    student: nn.Module, x, y, soft, idx: torch.Tensor, cfg: DistillConfig, loss_fn, output_kind: str
) -> float:
    """Mean distillation loss on the held-out rows ``idx``, in fixed batches, in eval mode."""
    student.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(idx), cfg.batch_size):
            b = idx[i : i + cfg.batch_size]
            if len(b) < 2 and count:
                break
            loss = _output_loss(student(*(a[b] for a in x)), soft[b], y[b], cfg, loss_fn, output_kind)
            total += float(loss) * len(b)
            count += len(b)
    student.train()
    return total / max(count, 1)


def held_out_split(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed tenth of ``n`` training rows (at most :data:`MAX_HELD_OUT`) held out of distillation
    (by ``seed``), and the rest.

    Args:
        n: The number of training rows.
        seed: The distillation's seed.

    Returns:
        (held-out rows, training rows), each sorted; nothing is held out of fewer than 20 rows.
    """
    rows = torch.arange(n)
    if n < 20:
        return rows[:0], rows
    shuffled = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 1))
    k = min(n // 10, MAX_HELD_OUT)
    return shuffled[:k].sort().values, shuffled[k:].sort().values


@dataclass
class TrainingState:
    """Where a distillation run stopped, to resume it exactly: the optimizer's and the schedule's
    state, the data order and position, and the random generators'."""

    step: int
    optimizer: dict
    scheduler: dict
    order: torch.Tensor
    pos: int
    generator: torch.Tensor
    torch_rng: torch.Tensor

    def to_dict(self) -> dict:
        """The state as plain tensors and dicts (what ``torch.save`` stores)."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict) -> TrainingState:
        """The state :meth:`to_dict` stored."""
        return cls(**data)


def distill(
    student: nn.Module,
    x: tuple[torch.Tensor, ...],
    y: torch.Tensor,
    soft_targets: torch.Tensor,
    cfg: DistillConfig,
    *,
    seed: int = 0,
    loss_fn=None,
    on_step=None,
    output_kind: str = "logits",
    teacher_features: TeacherFeatureCache | None = None,
    feature_map: dict[str, str] | None = None,
    resume: TrainingState | None = None,
    on_end: Callable[[TrainingState], None] | None = None,
) -> nn.Module:
    """Fine-tune ``student`` in place for ``cfg.steps`` steps on (x, y) against the teacher's
    outputs ``soft_targets``; returns it in eval mode. The data order is fixed by ``seed``.
    ``loss_fn(student_out, teacher_out, targets, cfg)`` replaces the built-in loss of ``output_kind``;
    ``teacher_features`` (with ``cfg.feature_weight > 0``) adds intermediate-feature distillation.
    With ``cfg.early_stop`` a tenth of the rows (at most ``MAX_HELD_OUT``, fixed by ``seed``) is held out of training, the
    distillation loss on them is checked ten times over the run, and the best student is kept.
    ``feature_map`` (student module -> teacher module, after depth pruning) pairs each student
    feature layer with the teacher layer it came from; without it, names pair with themselves.

    On a fidelity ladder (``cfg.ladder_steps``) the rows of :func:`held_out_split` are held out (they
    score the rung), and ``resume`` (the ``TrainingState`` an earlier rung ended with, its weights
    already in ``student``) continues that run from its step to ``cfg.steps``: the same optimizer
    moments, schedule position and data order as one uninterrupted run. ``on_end`` receives the
    state the run ends with."""
    if cfg.steps == 0:
        return student.eval()
    set_torch_threads()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(student.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
    if resume is not None:
        opt.load_state_dict(resume.optimizer)
        sched.load_state_dict(resume.scheduler)
        gen.set_state(resume.generator)
        torch.set_rng_state(resume.torch_rng)
    use_features = teacher_features is not None and cfg.feature_weight > 0
    pairs = (
        feature_map
        if feature_map is not None
        else {n: n for n in (teacher_features.names if use_features and teacher_features is not None else ())}
    )
    taps = FeatureTaps(student, tuple(pairs)) if use_features else None
    student.train()
    rows = torch.arange(len(x[0]))
    held = rows[:0]
    if cfg.early_stop or cfg.ladder_steps:
        held, rows = held_out_split(len(rows), seed)
    if cfg.ladder_steps:  # a rung is scored on the held-out rows by its caller, never early-stopped
        held = rows[:0]
    check_every = max(1, cfg.steps // 10)
    best: tuple[float, dict] | None = None
    n = len(rows)
    order, pos, start = (
        (resume.order, resume.pos, resume.step)
        if resume is not None
        else (rows[torch.randperm(n, generator=gen)], 0, 0)
    )
    try:
        for step in range(start, cfg.steps):
            if pos + cfg.batch_size > n:
                order, pos = rows[torch.randperm(n, generator=gen)], 0
            idx = order[pos : pos + cfg.batch_size]
            pos += cfg.batch_size
            batch = tuple(a[idx] for a in x)
            out = student(*batch)
            loss = _output_loss(out, soft_targets[idx], y[idx], cfg, loss_fn, output_kind)
            if use_features:
                assert taps is not None and teacher_features is not None  # both set when use_features
                tapped = {pairs[k]: v for k, v in taps.values.items()}
                loss = loss + cfg.feature_weight * feature_loss(tapped, teacher_features(idx, batch))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"distillation loss became {loss.item()} at step {step}; lower distill.lr")
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if on_step:
                on_step(step + 1, cfg.ladder_steps or cfg.steps)  # a ladder's rungs share one run
            if len(held) and ((step + 1) % check_every == 0 or step + 1 == cfg.steps):
                score = _held_out_loss(student, x, y, soft_targets, held, cfg, loss_fn, output_kind)
                if best is None or score < best[0]:
                    best = (score, {k: v.detach().clone() for k, v in student.state_dict().items()})
    finally:
        if taps is not None:
            taps.close()
    if best is not None:
        student.load_state_dict(best[1])
    if on_end is not None:
        on_end(
            TrainingState(
                max(start, cfg.steps),
                opt.state_dict(),
                sched.state_dict(),
                order,
                pos,
                gen.get_state(),
                torch.get_rng_state(),
            )
        )
    return student.eval()
