"""The engine every check runs on: the result, the one frame, the stand-in, and naming a mistake.

A check builds its inputs, then calls ``run_check(name, fn, reference, graded, body)``: ``body()`` calls
the learner's function (through ``call``), compares with the reference, and raises ``Mistake(id, title,
advice)`` at the first thing wrong; ``match`` names a mistake by recomputing the usual wrong answers.
The frame prints one line and hands the result to ``finish`` (learning or grading mode, see the package).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass

import torch

TOLERANCE = 1e-5   # largest rel_error that counts as correct
SEED = 0           # every check draws its inputs from generators seeded with this
CHECK_TIME_LIMIT_S = 60  # a learner's function that runs longer is stopped (a loop that never ends)


@dataclass(frozen=True)
class CheckResult:
    """What a check found.  ``bool(result)`` is ``result.passed``.

    mistake: an identifier such as "first_item_only" (None when passed);
    notes: remarks on a correct answer, e.g. ("python_loop",); message: the printed text.
    """
    name: str
    passed: bool
    mistake: str | None
    message: str
    notes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.message

    def _ipython_display_(self) -> None:
        """The message is already printed; show nothing more in Jupyter."""


class ExerciseFailed(AssertionError):
    """Raised by a failed check in grading mode."""


def grading() -> bool:
    """True while nbgrader autogrades or validates (NBGRADER_EXECUTION is set) or when NST_GRADING=1."""
    return (os.environ.get("NBGRADER_EXECUTION", "") in ("autograde", "validate")
            or os.environ.get("NST_GRADING", "0") not in ("", "0"))


def finish(result: CheckResult, fn=None, reference=None, graded: bool = True) -> CheckResult:
    """Print ``result``; when it failed and ``graded``, fall back to ``reference`` and, in grading mode, raise.

    The fallback rebinds the learner's name (``fn.__name__`` in the notebook's namespace, where ``fn``
    was defined) to ``reference`` and says so in one line.  Functions defined in modules are left alone.
    """
    print(result.message)
    if result.passed or not graded:
        return result
    name = getattr(fn, "__name__", None)
    namespace = getattr(fn, "__globals__", None)
    in_notebook = isinstance(namespace, dict) and namespace.get("__name__") == "__main__"
    if reference is not None and name and in_notebook and namespace.get(name) is fn:
        namespace[name] = stand_in(reference)
        print(f"↪ until yours passes, `{name}` is the reference implementation, so the cells below still run.")
    if grading():
        raise ExerciseFailed(result.message)
    return result


class Mistake(Exception):
    """A named mistake: ``mistake`` is its id (e.g. "first_item_only"), ``title`` what is wrong, ``advice`` the fix."""

    def __init__(self, mistake: str, title: str, advice: str):
        super().__init__(title)
        self.mistake, self.title, self.advice = mistake, title, advice


def rel_error(x: torch.Tensor, y: torch.Tensor) -> float:
    """max|x - y| / max(1e-8, max(|x| + |y|)), computed in float64; inf when either holds NaN or inf."""
    x, y = x.detach().double(), y.detach().double()
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):  # NaN or inf never counts as close
        return float("inf")
    return float((x - y).abs().max() / (x.abs() + y.abs()).max().clamp_min(1e-8))


def run_check(name: str, fn, reference, graded: bool, body) -> CheckResult:
    """The one frame of every check: ``body()`` raises ``Mistake`` or returns what a correct answer gets.

    body returns the success text, or (text, notes).  The result is printed and handed to ``finish``.
    """
    try:
        not_the_stand_in(fn, reference)
        outcome = body()
        text, notes = outcome if isinstance(outcome, tuple) else (outcome, ())
        result = CheckResult(name, True, None, f"✅ {name}: {text}", notes)
    except Mistake as m:
        result = CheckResult(name, False, m.mistake, f"❌ {name}: {m.title} — {m.advice}")
    return finish(result, fn, reference, graded)


def stand_in(reference):
    """The reference, marked so that a check can tell it from the learner's own function."""
    @functools.wraps(reference)
    def stand_in(*args, **kwargs):
        return reference(*args, **kwargs)
    stand_in.nst_stand_in = True
    return stand_in


def not_the_stand_in(fn, reference):
    """A name that an earlier failed check bound to the reference must not pass as the learner's work."""
    if getattr(fn, "nst_stand_in", False):
        raise Mistake("still_the_reference", "this is still the reference stand-in, not your function",
                      f"run the cell that defines your `{reference.__name__}` again, then this check.")


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


def call(fn, args, when):
    """``fn(*args)`` with gradients on and a time limit; any error it raises becomes a named Mistake."""
    try:
        with deadline(fn, CHECK_TIME_LIMIT_S), torch.enable_grad():
            return fn(*args)
    except TooSlow:
        raise Mistake("too_slow", f"did not return within {CHECK_TIME_LIMIT_S:g} s{when}",
                      "look for a loop that never ends (a `while` whose condition stays true) or one that "
                      "runs far too often; the check's inputs are tiny, so a right answer takes milliseconds."
                      ) from None
    except NotImplementedError:
        raise Mistake("not_implemented", "not written yet",
                      "replace `raise NotImplementedError()` with your code.") from None
    except Exception as error:  # noqa: BLE001 - we report any error of the learner's code
        where = error_line(fn, error)
        advice = "fix this error first."
        if isinstance(error, NameError):
            advice = "a NameError usually means a typo in a variable name; " + advice
        raise Mistake("exception", f"raises {type(error).__name__}: {error}{where}{when}", advice) from None


def error_line(fn, error) -> str:
    code = getattr(fn, "__code__", None)
    frames = [f for f in traceback.extract_tb(error.__traceback__) if code and f.filename == code.co_filename]
    return f" (at `{frames[-1].line}`)" if frames and frames[-1].line else ""


def to_tensor(got, expected):
    if got is None:
        raise Mistake("returned_none", "returns None", "add a `return` statement at the end.")
    if isinstance(got, torch.Tensor):
        same_device(got, expected)
        return got.detach()
    try:  # a Python number or a NumPy array: compare the values, the gradient check will complain
        return torch.as_tensor(got).to(expected.dtype)
    except (TypeError, ValueError, RuntimeError):
        raise Mistake("not_a_tensor", f"returns a {type(got).__name__}, not a tensor",
                      "return a torch.Tensor.") from None


def same_device(got, expected):
    if isinstance(expected, torch.Tensor) and got.device != expected.device:
        raise Mistake("wrong_device", f"returns a tensor on {got.device}, but the inputs are on {expected.device}",
                      "keep the result where the inputs are: no .to(...), .cuda(), .cpu() or device=... .")


def finite(got, name):
    if not torch.isfinite(got).all():
        raise Mistake("not_finite", "returns NaN or inf", f"look for a division by zero or a log of 0 in {name}.")


def scalar_shape(got, expected, args):
    if got.numel() != 1:
        raise Mistake("wrong_shape", f"wrong output shape: expected a scalar (shape ()), got {tuple(got.shape)}",
                      "sum over every dimension, the batch included, so that the loss is one number.")


def wrong_values(got, expected, hint):
    message = f"wrong values (rel_error {rel_error(got, expected):.2g}, should be < {TOLERANCE:g})"
    return Mistake("wrong_values", message, hint or "compare your code with the formula above, term by term.")


def match(got, candidates):
    """The first (mistake, title, advice) whose candidate value equals ``got``."""
    for mistake, title, advice, value in candidates:
        if value is not None and rel_error(got, value) < 1e-4:
            return Mistake(mistake, title, advice)
    return None


NOT_SQUARED = ("not_squared", "the differences are not squared",
               "square the differences before summing: (a - b).pow(2) or (a - b) ** 2, not abs() or a norm.")


MEAN = ("mean_instead_of_sum", "uses a mean instead of a sum",
        "this loss is a plain sum over all elements: use .sum(), not .mean().")


NO_WEIGHT = ("missing_weight", "the weight is missing", "multiply the sum by the weight argument.")

