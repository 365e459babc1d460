"""A time limit on the learner's function: a loop that never ends is stopped, not waited for."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time


class TooSlow(BaseException):
    """Raised inside a learner's function that runs past CHECK_TIME_LIMIT_S (a BaseException, so that a bare
    ``except Exception`` in the learner's code does not swallow it)."""


def _time_limit(fn, seconds: float):
    """A trace function that stops ``fn`` after ``seconds`` (any platform): at any call it makes, and at every
    line of the file it was defined in (a notebook cell), where a loop that never ends would spin."""
    end, home = time.monotonic() + seconds, getattr(getattr(fn, "__code__", None), "co_filename", None)

    def on_line(frame, event, arg):
        if time.monotonic() > end:
            raise TooSlow
        return on_line

    def on_call(frame, event, arg):
        if time.monotonic() > end:
            raise TooSlow
        return on_line if frame.f_code.co_filename == home else None
    return on_call


@contextlib.contextmanager
def deadline(fn, seconds: float):
    """Raise TooSlow in ``fn`` after ``seconds``: by a timer signal where there is one (no cost), else by tracing."""
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        def stop(signum, frame):
            raise TooSlow
        previous, pending = signal.signal(signal.SIGALRM, stop), signal.setitimer(signal.ITIMER_REAL, seconds)
        start = time.monotonic()
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            if pending[0]:  # someone else's timer was running: let it go on
                signal.setitimer(signal.ITIMER_REAL, max(pending[0] - (time.monotonic() - start), 1e-3), pending[1])
    else:
        previous = sys.gettrace()
        sys.settrace(_time_limit(fn, seconds))
        try:
            yield
        finally:
            sys.settrace(previous)
