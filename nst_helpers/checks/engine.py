"""The engine every check runs on: the result, the one frame, the stand-in, and naming a mistake.

A check builds its inputs, then calls ``run_check(name, fn, reference, graded, body)``: ``body()`` calls
the learner's function (through ``call``), compares with the reference, and raises a ``Mistake`` at the
first thing wrong; ``match`` names a mistake by recomputing the usual wrong answers.  The frame prints
one line and hands the result to ``finish`` (learning or grading mode, see the package).

Every mistake is written once, in a ``Mistakes`` table (id: (title, advice)) next to the code that finds
it: ``TABLE(id, **values)`` is the ``Mistake`` to raise.  ``@reports(tables and helpers)`` says which
mistakes a check can name (``check.mistakes``); ``COMMON_MISTAKES`` are those every check can name.
"""

from __future__ import annotations

import functools
import os
import re
import string
import sys
import traceback
from dataclasses import dataclass

import torch

from .deadline import TooSlow, deadline

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
    if isinstance(fn, type):  # a class (notebook 07's residual block): the namespace of the module defining it
        namespace = getattr(sys.modules.get(fn.__module__), "__dict__", None)
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


class Mistakes(dict):
    """A table of mistakes, {key: (title, advice)}: a key is the mistake's id, or "id/variant" for another wording.

    The texts may hold {fields}: ``table(key, **fields)`` is the ``Mistake`` with them filled in
    (``advice=`` replaces the advice).  ``table.only(*keys)`` is part of it, ``a | b`` two together.
    """

    def __call__(self, key: str, advice: str | None = None, **fields) -> Mistake:
        title, default = self[key]
        return Mistake(key.partition("/")[0], title.format(**fields), advice or default.format(**fields))

    def only(self, *keys: str) -> Mistakes:
        return Mistakes({key: self[key] for key in keys})

    def __or__(self, other: dict) -> Mistakes:
        assert not self.keys() & other.keys(), f"written twice: {sorted(self.keys() & other.keys())}"
        return Mistakes({**self, **other})

    def listed(self) -> tuple[tuple[str, str], ...]:
        """(id, title) of every entry, "…" standing for each value a title holds."""
        return tuple(dict.fromkeys((key.partition("/")[0], shown(title)) for key, (title, _) in self.items()))


def shown(text: str) -> str:
    """``text`` with "…" for its {fields}, as the teacher's guide lists it."""
    parts = [literal + ("…" if field is not None else "") for literal, field, _, _ in string.Formatter().parse(text)]
    return re.sub("…+", "…", "".join(parts))


def reports(*sources):
    """Mark a check, or a helper it calls, with the mistakes it can name: ``fn.mistakes``, (id, title) pairs.

    A source is a ``Mistakes`` table (every entry) or a function marked the same way (all it names).
    ``COMMON_MISTAKES``, which every check can name, are left out: they are listed once.
    """
    def mark(fn):
        found = [pair for source in sources
                 for pair in (source.listed() if isinstance(source, Mistakes) else source.mistakes)]
        fn.mistakes = tuple(pair for pair in dict.fromkeys(found) if pair not in COMMON_MISTAKES.listed())
        return fn
    return mark


COMMON_MISTAKES = Mistakes({   # named by the frame (run_check, call, to_tensor) for any check
    "still_the_reference": ("this is still the reference stand-in, not your function",
                            "run the cell that defines your `{name}` again, then this check."),
    "not_implemented": ("not written yet", "replace `raise NotImplementedError()` with your code."),
    "exception": ("raises {kind}: {error}{where}{when}", "{typo}fix this error first."),
    "too_slow": ("did not return within {limit:g} s{when}",
                 "look for a loop that never ends (a `while` whose condition stays true) or one that runs far "
                 "too often; the check's inputs are tiny, so a right answer takes milliseconds."),
    "returned_none": ("returns None", "add a `return` statement at the end."),
})

OUTPUT_MISTAKES = Mistakes({   # named by the helpers below that look at what the learner's function returned
    "not_a_tensor": ("returns a {kind}, not a tensor", "return a torch.Tensor."),
    "wrong_device": ("returns a tensor on {got}, but the inputs are on {expected}",
                     "keep the result where the inputs are: no .to(...), .cuda(), .cpu() or device=... ."),
    "not_finite": ("returns NaN or inf", "look for a division by zero or a log of 0 in {where}."),
    "wrong_shape": ("wrong output shape: expected a scalar (shape ()), got {got}",
                    "sum over every dimension, the batch included, so that the loss is one number."),
    "wrong_values": ("wrong values (rel_error {error:.2g}, should be < {tolerance:g})",
                     "compare your code with the formula above, term by term."),
})


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
    """The reference, marked so that a check can tell it from the learner's own function (or class)."""
    if isinstance(reference, type):
        return type(reference.__name__, (reference,), {"nst_stand_in": True, "__doc__": reference.__doc__,
                                                       "__module__": reference.__module__})
    @functools.wraps(reference)
    def stand_in(*args, **kwargs):
        return reference(*args, **kwargs)
    stand_in.nst_stand_in = True
    return stand_in


def not_the_stand_in(fn, reference):
    """A name that an earlier failed check bound to the reference must not pass as the learner's work."""
    if getattr(fn, "nst_stand_in", False):
        raise COMMON_MISTAKES("still_the_reference", name=reference.__name__)


def call(fn, args, when):
    """``fn(*args)`` with gradients on and a time limit; any error it raises becomes a named Mistake."""
    try:
        with deadline(fn, CHECK_TIME_LIMIT_S), torch.enable_grad():
            return fn(*args)
    except TooSlow:
        raise COMMON_MISTAKES("too_slow", limit=CHECK_TIME_LIMIT_S, when=when) from None
    except NotImplementedError:
        raise COMMON_MISTAKES("not_implemented") from None
    except Exception as error:  # noqa: BLE001 - we report any error of the learner's code
        typo = "a NameError usually means a typo in a variable name; " if isinstance(error, NameError) else ""
        raise COMMON_MISTAKES("exception", kind=type(error).__name__, error=error, where=error_line(fn, error),
                              when=when, typo=typo) from None


def error_line(fn, error) -> str:
    code = getattr(fn, "__code__", None)
    frames = [f for f in traceback.extract_tb(error.__traceback__) if code and f.filename == code.co_filename]
    return f" (at `{frames[-1].line}`)" if frames and frames[-1].line else ""


@reports(OUTPUT_MISTAKES.only("wrong_device"))
def same_device(got, expected):
    if isinstance(expected, torch.Tensor) and got.device != expected.device:
        raise OUTPUT_MISTAKES("wrong_device", got=got.device, expected=expected.device)


@reports(COMMON_MISTAKES.only("returned_none"), OUTPUT_MISTAKES.only("not_a_tensor"), same_device)
def to_tensor(got, expected):
    if got is None:
        raise COMMON_MISTAKES("returned_none")
    if isinstance(got, torch.Tensor):
        same_device(got, expected)
        return got.detach()
    try:  # a Python number or a NumPy array: compare the values, the gradient check will complain
        return torch.as_tensor(got).to(expected.dtype)
    except (TypeError, ValueError, RuntimeError):
        raise OUTPUT_MISTAKES("not_a_tensor", kind=type(got).__name__) from None


@reports(OUTPUT_MISTAKES.only("not_finite"))
def finite(got, name):
    if not torch.isfinite(got).all():
        raise OUTPUT_MISTAKES("not_finite", where=name)


@reports(OUTPUT_MISTAKES.only("wrong_shape"))
def scalar_shape(got, expected, args):
    if got.numel() != 1:
        raise OUTPUT_MISTAKES("wrong_shape", got=tuple(got.shape))


@reports(OUTPUT_MISTAKES.only("wrong_values"))
def wrong_values(got, expected, hint):
    return OUTPUT_MISTAKES("wrong_values", advice=hint, error=rel_error(got, expected), tolerance=TOLERANCE)


def match(got, table: Mistakes, candidates, **fields):
    """``table(key, **fields)`` for the first (key, value) in ``candidates`` whose value equals ``got``, else None."""
    for key, value in candidates:
        if value is not None and rel_error(got, value) < 1e-4:
            return table(key, **fields)
    return None
