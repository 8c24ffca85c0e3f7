"""Training of built-in teachers: fixed seeds, explicit threads, a progress bar."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from rich.progress import Progress
from torch import nn

from autocl.runtime import set_torch_threads


def train_classifier(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    lr: float = 2e-3,
    batch_size: int = 64,
    seed: int = 0,
    label: str = "training teacher",
) -> nn.Module:
    """Train ``model`` with Adam and a cosine schedule on (x, y); returns it in eval mode."""
    set_torch_threads()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    steps_per_epoch = (len(xt) + batch_size - 1) // batch_size
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    model.train()
    with Progress(transient=True) as progress:
        task = progress.add_task(label, total=epochs * steps_per_epoch)
        for _ in range(epochs):
            order = torch.randperm(len(xt), generator=gen)
            for i in range(steps_per_epoch):
                idx = order[i * batch_size : (i + 1) * batch_size]
                loss = F.cross_entropy(model(xt[idx]), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                progress.advance(task)
    return model.eval()
