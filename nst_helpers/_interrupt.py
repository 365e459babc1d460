"""Ctrl-C on the command line, at any moment: exit code 130 and one line, never a traceback.

Python turns Ctrl-C into a KeyboardInterrupt wherever the main thread happens to be.  While the command
line starts, that is inside ``import torch`` (a second or two), where it prints a long traceback or is
even swallowed by the import machinery, and the run goes on.  So when this process is the command line
(``nst-stylize`` or ``python -m nst_helpers``), Ctrl-C ends it at once until ``cli.main`` is ready to
handle the KeyboardInterrupt itself; nothing has been written by then.  This module imports no torch, so
``nst_helpers/__init__.py`` imports it first.  In a notebook or a test nothing changes.
(Python's own start-up, before the first line of ``nst_helpers`` runs, is out of our reach: a Ctrl-C in
those first few tens of milliseconds gets Python's default treatment.)
"""

from __future__ import annotations

import os  # only modules that Python has loaded at start-up, so that the handler is in place at once
import signal
import sys

PROG = "nst-stylize"
TRAIN_PROG = "nst-train-fast"  # nst_helpers.fast.cli


def is_command_line() -> bool:
    """True in ``nst-stylize ...``, ``nst-train-fast ...`` and ``python -m nst_helpers ...``."""
    argv = list(getattr(sys, "orig_argv", []))
    as_module = any(flag == "-m" and name == "nst_helpers" for flag, name in zip(argv, argv[1:]))
    return as_module or _script() in (PROG, TRAIN_PROG)


def _script() -> str:
    return os.path.splitext(os.path.basename(sys.argv[0] if sys.argv else ""))[0].removesuffix("-script")


def _exit_now(signum, frame) -> None:
    os.write(2, f"{TRAIN_PROG if _script() == TRAIN_PROG else PROG}: interrupted; nothing was saved\n".encode())
    os._exit(130)


def _set(handler) -> None:
    if is_command_line():
        try:
            signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread: leave the handler alone
            pass


def exit_on_ctrl_c() -> None:
    """Command line only: from now on Ctrl-C ends the process with exit code 130 and one line."""
    _set(_exit_now)


def raise_on_ctrl_c() -> None:
    """Command line only: from now on Ctrl-C raises KeyboardInterrupt (Python's default)."""
    _set(signal.default_int_handler)


def ignore_ctrl_c() -> None:
    """Command line only: the work is done (and said); Ctrl-C no longer changes the outcome."""
    _set(signal.SIG_IGN)
