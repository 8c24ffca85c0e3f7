"""The trials of one process: who runs them, how they stop, and what happens to those a dead process left.

Each trial records the process running it (``user_attrs['worker']``: host, pid, process start
time). A trial left RUNNING by a process of this machine that no longer exists is failed with that
reason and retried at once, without waiting for the heartbeat grace period (which remains the rule
for other hosts). SIGTERM stops a run like Ctrl-C: the running trial is failed with the reason, retried once like
a killed one, and the command ends with one line. ``TrialRun.numbers`` are the trials this process ran, so a report
of "new trials" never counts another worker's.
"""

from __future__ import annotations

import copy
import logging
import os
import signal
import socket
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM; ``str()`` names the signal."""


# signals received: some libraries (torch's ONNX exporter) swallow the exception raised inside them,
# so the trial wrapper checks this too once the objective returns
_PENDING: list[str] = []


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def worker_identity() -> dict:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "started": _start_time(pid)}


def _alive(worker: dict) -> bool:
    pid = int(worker.get("pid", 0))
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        pass
    started = worker.get("started")
    return started is None or _start_time(pid) in (None, started)


def reap_dead_trials(study: optuna.Study) -> list[int]:
    """Fail and retry (once, like the heartbeat's retry) every RUNNING trial whose recorded process
    ran on this host and is gone. Returns the trial numbers failed here."""
    host, reaped = socket.gethostname(), []
    storage = study._storage
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker")
        if not isinstance(worker, dict) or worker.get("host") != host or _alive(worker):
            continue
        reason = (
            f"trial {t.number}: its process (pid {worker.get('pid')} on {host}) died while the trial ran "
            "(killed?); failed and retried"
        )
        try:
            storage.set_trial_user_attr(t._trial_id, "error", reason)
            if not storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                continue
        except UpdateFinishedTrialError:  # another process reaped it first
            continue
        retry_once(study, t._trial_id)
        reaped.append(t.number)
    return reaped


KEPT_ON_RETRY = ("seeded_from", "polish_of", "recipe")
"""What a retry inherits of its trial's user attributes: where it came from, not what it recorded
(a polished twin's retry is polished too)."""


def retry_once(study: optuna.Study, trial_id: int) -> None:
    """Enqueue the trial again, with its parameters, unless it is itself a retry (Optuna's heartbeat
    retry, ``max_retry=1``: the same rule for a killed, a stale and an interrupted trial)."""
    retry = copy.deepcopy(study._storage.get_trial(trial_id))
    retry.user_attrs = {k: v for k, v in retry.user_attrs.items() if k in KEPT_ON_RETRY}
    with warnings.catch_warnings():  # an experimental class, used on purpose
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        RetryHeartbeatStaleTrialCallback(max_retry=1)(study, retry)


class TrialRun:
    """Wraps the objective: records the worker, reaps dead local trials before each trial, stores
    the reason when the trial is interrupted, and remembers the trials this process ran."""

    def __init__(self) -> None:
        self.numbers: list[int] = []
        self.identity = worker_identity()

    def wrap(self, objective: Callable[[optuna.Trial], tuple]) -> Callable[[optuna.Trial], tuple]:
        def run(trial: optuna.Trial) -> tuple:
            self.numbers.append(trial.number)
            trial.set_user_attr("worker", self.identity)
            reap_dead_trials(trial.study)
            try:
                result = objective(trial)
            except KeyboardInterrupt as exc:
                self._record(trial, str(exc) or "Ctrl-C")
                raise
            except BaseException:
                if _PENDING:  # the interrupt was turned into another error on its way out
                    self._record(trial, _PENDING[-1])
                    raise Interrupted(_PENDING[-1]) from None
                raise
            if _PENDING:
                self._record(trial, _PENDING[-1])
                raise Interrupted(_PENDING[-1])
            return result

        return run

    @staticmethod
    def _record(trial: optuna.Trial, why: str) -> None:
        """Store why the trial stopped and enqueue its retry (once), so an interrupted recipe or
        polished twin runs again when the search resumes, as a killed one does."""
        trial.set_user_attr(
            "error", f"trial {trial.number}: interrupted ({why}); run the command again to resume (it is retried once)"
        )
        retry_once(trial.study, trial._trial_id)


class _DropTrialTracebacks(logging.Filter):
    """Optuna logs a failed trial as "[W] Trial N failed ... because of ..." with a ~40-line
    traceback, then "Trial N failed with value None."; autocl prints its own one line for an
    interrupted trial and for every trial error (the traceback of an internal error is stored with
    the trial and shown with --verbose), so both Optuna lines are dropped for those."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        from autocl.errors import AutoclError

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, (KeyboardInterrupt, AutoclError)):
            self.dropped = record.getMessage().split(" failed", 1)[0]  # "Trial N"
            return False
        message = record.getMessage()
        if self.dropped and message.startswith(self.dropped + " failed with value"):
            self.dropped = None  # the second line optuna logs for that trial
            return False
        return True


@contextmanager
def quiet_optuna_failures() -> Iterator[None]:
    """Within the block, Optuna's own lines about a failed trial are not printed beside autocl's
    (see ``_DropTrialTracebacks``). Nothing is changed outside the block, so importing autocl
    leaves Optuna's logging as the user set it."""
    loggers = [logging.getLogger("optuna.study._optimize")]
    handlers = list(logging.getLogger("optuna").handlers)
    filt = _DropTrialTracebacks()
    for x in (*loggers, *handlers):
        x.addFilter(filt)
    try:
        with warnings.catch_warnings():  # heartbeats are experimental in Optuna; autocl relies on them on purpose
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        for x in (*loggers, *handlers):
            x.removeFilter(filt)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """A context manager within which SIGTERM raises :class:`Interrupted` ("SIGTERM").

    Like Ctrl-C raises KeyboardInterrupt, so a stopped run fails its trial with the reason and ends
    cleanly. A no-op outside the main thread.

    Returns:
        The context manager (it yields nothing).
    """

    def on_term(signum, frame):
        _PENDING.append("SIGTERM")
        raise Interrupted("SIGTERM")

    def on_int(signum, frame):  # Ctrl-C is recorded too: torch's ONNX exporter swallows the KeyboardInterrupt
        _PENDING.append("Ctrl-C")
        raise KeyboardInterrupt("Ctrl-C")

    try:
        previous = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread
        yield
        return
    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int is signal.default_int_handler:  # an ignored SIGINT (a background job) stays ignored
        signal.signal(signal.SIGINT, on_int)
    previous_hook = sys.unraisablehook

    def quiet_interrupt(unraisable) -> None:
        # a signal that lands in a weakref or __del__ callback is swallowed there; it is recorded in
        # _PENDING and raised again at the trial's end, so Python's "Exception ignored" traceback is noise
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and _PENDING:
            return
        previous_hook(unraisable)

    sys.unraisablehook = quiet_interrupt
    _PENDING.clear()
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        signal.signal(signal.SIGTERM, previous)
        if previous_int is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous_int)
        _PENDING.clear()
