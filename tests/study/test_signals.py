"""A signal that lands inside a ``__del__`` or weakref callback: recorded, and no stray traceback."""

import gc
import os
import signal
import sys

from autocl.study._trial_run import _PENDING, sigterm_as_interrupt


class _Finalized:
    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100_000):  # the handler runs here, inside the finalizer, which swallows its exception
            pass


def test_a_sigterm_swallowed_by_a_finalizer_is_recorded_without_a_traceback(monkeypatch):
    printed: list[BaseException] = []  # what Python's hook would print as "Exception ignored ... Traceback"
    monkeypatch.setattr(sys, "unraisablehook", lambda u: printed.append(u.exc_value))
    before = signal.getsignal(signal.SIGTERM)
    with sigterm_as_interrupt():
        _Finalized()
        gc.collect()
        recorded = list(_PENDING)
        other = type("_Other", (), {"__del__": lambda self: 1 / 0})
        other()
        gc.collect()
    assert recorded == ["SIGTERM"]  # raised again at the trial's end (TrialRunner)
    # the interrupt is not printed; any other error in a finalizer still is
    assert [type(e) for e in printed] == [ZeroDivisionError], printed
    assert sys.unraisablehook is not None and signal.getsignal(signal.SIGTERM) is before
