"""A size budget for the artifact cache: the least recently used entries go first, protected ones never.

A search that runs for days writes a student and an artifact per trial. With a budget, whenever the
cache (everything under its root: teachers, data, baselines, students, artifacts) grows past it, the
entries (:class:`autocl.compress.CacheEntry`: students, artifacts, ladder checkpoints) used longest ago are
deleted until it fits again. Never deleted: what is not an entry (teachers, baselines, data), what a
running trial holds (:meth:`autocl.compress.CacheLayout.hold`), and what the caller protects (the
study's front members, queued polishing and waiting ladder promotions, see ``autocl.study``). An evicted entry is rebuilt on
demand and verified by its sha256 like any rebuild.

The default budget is 10 GB or a quarter of the space the cache may use (its disk's free space
plus what it holds now), whichever is smaller; ``AUTOCL_CACHE_MAX`` sets it for every command
and the service, ``--cache-max`` for one run.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from autocl.compress._cache import CacheEntry, CacheLayout
from autocl.errors import ConfigError

DEFAULT_MAX_BYTES = 10 * 10**9
ENV = "AUTOCL_CACHE_MAX"
_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}

Keep = Callable[[CacheEntry], bool]
"""Whether an entry is protected from eviction."""


def parse_size(text: str, field: str = "--cache-max") -> int:
    """'1GB', '500MB', '1.5GiB', '2e9' or a plain byte count -> bytes (GB = 10^9, GiB = 2^30).

    Args:
        text: The size as written.
        field: The option or setting it came from, for the error.

    Returns:
        The size in bytes.

    Raises:
        ConfigError: The text is not a size.
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]*)\s*", str(text).lower())
    if not m or m.group(2) not in _UNITS:
        raise ConfigError(f"cannot read {text!r} as a size: write e.g. 1GB, 500MB or 2GiB", field=field)
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def format_size(n: float) -> str:
    """Bytes as a short human size (``1.23 GB``, ``512 KB``), decimal units like :func:`parse_size`."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{int(n)} B"


def cache_usage(cache_root: str | Path) -> int:
    """The bytes of every file under ``cache_root`` (symbolic links are not followed)."""
    total = 0
    for folder, _, names in os.walk(cache_root):
        for name in names:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:  # removed meanwhile by another worker
                continue
    return total


def default_cache_max(cache_root: str | Path) -> int:
    """10 GB, or a quarter of the free space of the cache's disk plus what the cache holds, if smaller."""
    root = Path(cache_root)
    free = shutil.disk_usage(root if root.exists() else Path.cwd()).free
    return min(DEFAULT_MAX_BYTES, (free + cache_usage(root)) // 4)


def cache_max(text: str | None, cache_root: str | Path) -> int:
    """The budget of this run: ``text`` (``--cache-max``), else ``AUTOCL_CACHE_MAX``, else the default.

    Args:
        text: The size given on the command line, or None.
        cache_root: The artifact cache's root.

    Returns:
        The budget in bytes.

    Raises:
        ConfigError: The given size, or the environment's, is not a size.
    """
    if text is not None:
        return parse_size(text)
    env = os.environ.get(ENV)
    if env:
        return parse_size(env, field=ENV)
    return default_cache_max(cache_root)


@dataclass
class EvictionPlan:
    """What eviction would remove to bring the cache from ``before`` bytes to ``max_bytes``.

    ``remove`` is in the order it goes (least recently used first); ``after`` is the size once it
    has gone (still above ``max_bytes`` when what is left is protected or held).
    """

    max_bytes: int
    before: int
    remove: list[CacheEntry] = field(default_factory=list)
    protected: list[CacheEntry] = field(default_factory=list)
    held: list[CacheEntry] = field(default_factory=list)

    @property
    def after(self) -> int:
        """The cache's size once ``remove`` has gone."""
        return self.before - sum(e.size for e in self.remove)


def plan_eviction(cache_root: str | Path, max_bytes: int, keep: Keep = lambda e: False) -> EvictionPlan:
    """Which entries to remove, least recently used first, to bring the cache under ``max_bytes``.

    Args:
        cache_root: The artifact cache's root.
        max_bytes: The budget.
        keep: Protects an entry (front members, queued polishing).

    Returns:
        The plan (nothing is removed here).
    """
    plan = EvictionPlan(max_bytes=max_bytes, before=cache_usage(cache_root))
    if plan.before <= max_bytes:
        return plan
    entries = [e for layout in CacheLayout.all_under(cache_root) for e in layout.entries()]
    for entry in sorted(entries, key=lambda e: (e.last_used, e.kind != "artifact", e.key)):
        if plan.after <= max_bytes:
            break
        if keep(entry):
            plan.protected.append(entry)
        elif entry.layout.is_held(entry):
            plan.held.append(entry)
        else:
            plan.remove.append(entry)
    return plan


def evict(plan: EvictionPlan) -> list[CacheEntry]:
    """Remove the plan's entries; one a trial started holding meanwhile stays.

    Returns:
        The entries removed.
    """
    return [e for e in plan.remove if e.layout.remove(e) or not any(p.exists() for p in e.files)]


@dataclass
class CacheBudget:
    """Keeps a cache under ``max_bytes``: :meth:`enforce` evicts when it is over.

    ``protect`` is asked for the keep-predicate only when the cache is over budget (reading a study's
    front costs a database query).
    """

    max_bytes: int
    protect: Callable[[], Keep] = lambda: lambda e: False
    evicted: list[CacheEntry] = field(default_factory=list)

    def enforce(self, cache_root: str | Path) -> list[CacheEntry]:
        """Evict the least recently used unprotected entries while the cache is over budget.

        Args:
            cache_root: The artifact cache's root.

        Returns:
            The entries removed now.
        """
        if cache_usage(cache_root) <= self.max_bytes:
            return []
        removed = evict(plan_eviction(cache_root, self.max_bytes, self.protect()))
        self.evicted.extend(removed)
        return removed


__all__ = [
    "DEFAULT_MAX_BYTES",
    "ENV",
    "CacheBudget",
    "EvictionPlan",
    "cache_max",
    "cache_usage",
    "default_cache_max",
    "evict",
    "format_size",
    "parse_size",
    "plan_eviction",
]
