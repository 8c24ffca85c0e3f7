"""Where autocl keeps its files, and how many threads torch may use.

``AUTOCL_HOME`` (default ``./studies``) holds study databases, exports and the cache of teachers,
students and artifacts. Torch's thread count is set explicitly: on small machines the default
oversubscribes the cores and makes training far slower. Torch is imported only for that, so the
measuring side (``hardware``, which never loads torch) can read the same folders from here.
"""

from __future__ import annotations

import os
from pathlib import Path


def home_dir() -> Path:
    """``AUTOCL_HOME``, else ``./studies``: the one definition of where autocl keeps its files."""
    return Path(os.environ.get("AUTOCL_HOME", "studies"))


def cache_dir() -> Path:
    path = home_dir() / "cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def release_memory() -> None:
    """Give memory freed by a finished trial back: collect cycles (a student and its sessions may sit
    in one) and, on glibc, return the freed heap to the operating system (``malloc_trim``), so a
    search that runs for days does not keep its peak resident set."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def train_threads() -> int:
    env = os.environ.get("AUTOCL_TRAIN_THREADS")
    if env:
        return max(1, int(env))
    return max(1, min(4, os.cpu_count() or 1))


def set_torch_threads(n: int | None = None) -> None:
    import torch

    n = n or train_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # can only be set once, before any parallel work
        pass
