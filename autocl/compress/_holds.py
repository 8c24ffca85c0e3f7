"""Holds on cache entries, and whether a process of this machine is alive.

A hold is a shared ``flock`` on an entry's lock file (``CacheLayout.hold``): eviction takes the lock
exclusively without waiting, so it skips a held entry; the operating system drops the lock when its
holder dies.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


def alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class EntryHold:
    """A shared ``flock`` on an entry's lock file, held while a trial uses the entry.

    Eviction takes the lock exclusively without waiting, so it skips a held entry. The operating
    system drops the lock when its holder dies: a crashed worker holds nothing.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> EntryHold:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        fcntl.flock(fd, fcntl.LOCK_SH)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None


__all__ = ["EntryHold", "alive"]
