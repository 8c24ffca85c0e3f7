"""Knowledge distillation: fine-tune the pruned student against the teacher's soft targets.

Loss = alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * CE(student, labels).
The teacher's logits depend only on the (fixed) training data, so they are computed once per
teacher and reused by every trial.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from autocl.config import DistillConfig
from autocl.runtime import set_torch_threads


def teacher_logits(teacher: nn.Module, x: tuple[torch.Tensor, ...], batch_size: int = 256) -> torch.Tensor:
    """Teacher outputs for all of the inputs ``x`` under no_grad (computed once per search, then reused)."""
    teacher.eval()
    n = len(x[0])
    with torch.no_grad():
        return torch.cat([teacher(*(a[i:i + batch_size] for a in x)) for i in range(0, n, batch_size)])


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
            temperature: float, alpha: float) -> torch.Tensor:
    t = temperature
    soft = F.kl_div(F.log_softmax(student_logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1),
                    reduction="batchmean", log_target=True) * (t * t)
    hard = F.cross_entropy(student_logits, labels)
    return alpha * soft + (1.0 - alpha) * hard


def distill(student: nn.Module, x: tuple[torch.Tensor, ...], y: torch.Tensor, soft_targets: torch.Tensor,
            cfg: DistillConfig, *, seed: int = 0, loss_fn=None, on_step=None) -> nn.Module:
    """Fine-tune ``student`` in place for ``cfg.steps`` steps on (x, y) against the teacher's
    outputs ``soft_targets``; returns it in eval mode. The data order is fixed by ``seed``.
    ``loss_fn(student_out, teacher_out, targets, cfg)`` replaces the logit KD loss."""
    if cfg.steps == 0:
        return student.eval()
    set_torch_threads()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(student.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.steps)
    student.train()
    n = len(x[0])
    order = torch.randperm(n, generator=gen)
    pos = 0
    for step in range(cfg.steps):
        if pos + cfg.batch_size > n:
            order, pos = torch.randperm(n, generator=gen), 0
        idx = order[pos:pos + cfg.batch_size]
        pos += cfg.batch_size
        out = student(*(a[idx] for a in x))
        if loss_fn is None:
            loss = kd_loss(out, soft_targets[idx], y[idx], cfg.temperature, cfg.alpha)
        else:
            loss = loss_fn(out, soft_targets[idx], y[idx], cfg)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"distillation loss became {loss.item()} at step {step}; lower distill.lr")
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if on_step:
            on_step(step + 1, cfg.steps)
    return student.eval()
