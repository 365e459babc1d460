"""Errors about settings, said in the caller's words (notebook 05; the command line).

A message names the settings it is about as keyword arguments (``style_scale``, ``size=4096``), which is
how the notebooks and ``stylize`` write them; the command line says the same message with its options
(``--style-scale``, ``--size 4096``) by calling ``worded`` with its own naming function.
"""

from __future__ import annotations

from collections.abc import Callable

Naming = Callable[..., str]   # name(field) or name(field, value) -> how the caller writes that setting


def keyword(field: str, value=None) -> str:
    """A setting as a keyword argument: ``style_scale``, or ``size=4096`` with a value."""
    return field if value is None else f"{field}={value}"


class _Worded:
    """An error whose one-line message ``words(name)`` can name the settings in other words."""

    def __init__(self, words: Callable[[Naming], str]):
        super().__init__(words(keyword))
        self.words = words

    def worded(self, name: Naming) -> str:
        """The message with every setting it mentions written as ``name(field)`` or ``name(field, value)``."""
        return self.words(name)


class SettingError(_Worded, ValueError):
    """A bad setting value (a ValueError), e.g. ``steps must be a whole number, at least 1, got 1.5``."""


class TooLargeError(_Worded, MemoryError):
    """A run that would not fit in memory (a MemoryError), e.g. ``size=4096 needs about 12 GB ...``."""
