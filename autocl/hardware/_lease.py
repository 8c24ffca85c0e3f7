"""One latency measurement at a time per device: a lease that survives crashes.

The lease is an exclusive ``flock`` on ``<lease dir>/<device key>.lock``. Every process and
thread measuring on this machine takes it, so trials training in parallel never time each other's
inference. The operating system drops the lock when its holder dies, so a crashed or killed
worker never leaves the device locked. The lease is re-entrant within one thread.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

from autocl.errors import ProfileError
from autocl.hardware._device import host_key
from autocl.runtime import cache_dir

_held = threading.local()


def lease_dir() -> Path:
    """The directory of the measurement leases: the same for every process that should share the device.

    Returns:
        ``AUTOCL_LEASE_DIR``, else ``<AUTOCL_HOME>/cache/leases`` (created).
    """
    env = os.environ.get("AUTOCL_LEASE_DIR")
    path = Path(env) if env else cache_dir() / "leases"
    path.mkdir(parents=True, exist_ok=True)
    return path


class DeviceLease:
    """Context manager holding the device's measurement lease; ``waited_s`` says how long it waited."""

    def __init__(self, key: str | None = None, *, timeout_s: float = 900.0, directory: Path | None = None) -> None:
        self.key = key or host_key()
        self.path = (directory or lease_dir()) / f"{self.key}.lock"
        self.timeout_s = timeout_s
        self.waited_s = 0.0
        self._fd: int | None = None

    def _depth(self) -> dict[str, int]:
        if not hasattr(_held, "depth"):
            _held.depth = {}
        return _held.depth

    def __enter__(self) -> DeviceLease:
        depth = self._depth()
        if depth.get(str(self.path), 0) > 0:  # this thread holds it already
            depth[str(self.path)] += 1
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        start = time.monotonic()
        pause = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - start > self.timeout_s:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise ProfileError(
                        f"waited {self.timeout_s:g} s for the measurement lease {self.path} (held by {holder}); "
                        "another measurement is running on this device. Wait for it, or raise "
                        "measurement.lease_timeout_s",
                        field="measurement.lease_timeout_s",
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.1)
        self.waited_s = time.monotonic() - start
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} thread {threading.get_ident()} since {time.time():.3f}\n".encode())
        self._fd = fd
        depth[str(self.path)] = 1
        return self

    def __exit__(self, *exc) -> None:
        depth = self._depth()
        depth[str(self.path)] -= 1
        if depth[str(self.path)] == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 200).decode(errors="replace").strip() or "an unknown process"
    except OSError:
        return "an unknown process"
