"""The command line's output file: a name it can save, never one of the inputs, writable before any work.

Checked when the options are read (usage errors, exit code 2), so that a long run never ends in an error
about OUT, and an input is never overwritten by its own result.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

OUTPUT_SUFFIXES = (".png", ".jpg", ".jpeg")


def output_path(text: str) -> str:
    """The ``-o`` option's type: a .png, .jpg or .jpeg file name, not a folder."""
    if Path(text).suffix.lower() not in OUTPUT_SUFFIXES:
        raise argparse.ArgumentTypeError(f"{text!r} must end in .png, .jpg or .jpeg")
    if Path(text).expanduser().is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder: give a file name such as {text.rstrip('/')}/out.png")
    return text


def input_at(output: str, inputs: list[tuple[str, str]]) -> str | None:
    """The name of the input (of ``(name, path)`` pairs) that OUT would overwrite, also through links or
    another spelling of the path, or None."""
    out = Path(output).expanduser()
    for name, source in inputs:
        path = Path(source).expanduser()
        try:
            same = os.path.samefile(out, path) if out.exists() and path.exists() else out.resolve() == path.resolve()
        except (OSError, ValueError):
            same = False
        if same:
            return name
    return None


def unwritable(output: str) -> str | None:
    """Why OUT cannot be written, or None: tried before the run by making a temporary file in its folder."""
    folder = Path(output).expanduser().absolute().parent
    while not folder.exists() and folder != folder.parent:  # missing folders are made when saving
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        return err.strerror or str(err)
    return None


def nothing_saved(output: str) -> str:
    """The end of the line said when a run stops before it has an image: nothing saved, OUT as it was."""
    left = f"; {output} was left as it was" if Path(output).expanduser().exists() else ""
    return f"nothing was saved{left}"
