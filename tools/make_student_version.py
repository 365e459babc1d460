#!/usr/bin/env python
"""Write student copies of the notebooks: solutions stubbed, secrets and tooling removed.

    python tools/make_student_version.py --out handout                          # every notebook in notebooks/
    python tools/make_student_version.py --out handout notebooks/01_content_loss.ipynb

What a student copy is (the same rules apply when nbgrader releases the course: see
tools/nbgrader_course.py, whose nbgrader configuration uses ``StudentCopy`` from this file):

* every region from a ``### BEGIN SOLUTION`` line to its ``### END SOLUTION`` line becomes
  ``# YOUR CODE HERE`` + ``raise NotImplementedError()``, indented like the BEGIN line; a solution
  cell without markers becomes that stub as a whole (nbgrader's rules);
* tooling comments (``# NBVAL_CHECK_OUTPUT`` and the other nbval markers, ``# noqa ...``) are removed
  from every code cell;
* a cell tagged ``demo-mistake`` (it shows a mistake in code that would give the answer away) keeps its
  outputs, and its code is replaced by a one-line comment;
* a cell tagged ``keep-output`` (a reference figure that no exercise changes) keeps its outputs;
  every other output is cleared.

It refuses, with a one-line error and without writing anything, a notebook whose markers do not pair
up or that has a solution region in a cell without nbgrader's solution metadata (nbgrader would refuse
it too), or that is not a notebook.  It writes only into the folder given with --out, never into notebooks/ or
below it and never over one of its sources, and prints every file it wrote.
"""

from __future__ import annotations

import argparse
import codecs
import io
import os
import re
import sys
import tempfile
import tokenize
from pathlib import Path

import nbformat
from nbconvert.preprocessors import Preprocessor

BEGIN, END = "BEGIN SOLUTION", "END SOLUTION"    # nbgrader matches these anywhere in a line
CODE_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
TEXT_STUB = ["YOUR ANSWER HERE"]
KEEP_OUTPUT, DEMO_MISTAKE = "keep-output", "demo-mistake"
DEMO_COMMENT = "# (This cell showed a mistake in code that would give an exercise away: only its output is kept.)"
TOOLING_COMMENT = re.compile(r"#\s*(NBVAL_[A-Z_]+|noqa\b)")


class StudentCopyError(ValueError):
    """The notebook cannot be turned into a student copy safely."""


def is_solution_cell(cell) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution", False))


def stub_solutions(source: str, code: bool = True, where: str = "") -> tuple[str, bool]:
    """``source`` with each solution region replaced by the stub, and whether there was a region.

    Raises StudentCopyError on a BEGIN inside a region, an END without a BEGIN, or a BEGIN without an END.
    """
    stub = CODE_STUB if code else TEXT_STUB
    out, inside, found = [], False, False
    for number, line in enumerate(source.split("\n"), start=1):
        if BEGIN in line:
            if inside:
                raise StudentCopyError(f"{where}line {number}: {BEGIN} inside another solution region: "
                                       f"close the first one with ### {END}")
            inside = found = True
            indent = line[: len(line) - len(line.lstrip())]
            out += [indent + stub_line for stub_line in stub]
        elif END in line:
            if not inside:
                raise StudentCopyError(f"{where}line {number}: ### {END} without a ### {BEGIN} before it")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise StudentCopyError(f"{where}### {BEGIN} without a matching ### {END}: add the END line")
    return "\n".join(out), found


def strip_tooling_comments(source: str) -> str:
    """``source`` without nbval markers and ``# noqa`` comments; a line that held only such a comment goes."""
    try:
        comments = {token.start[0]: token.start[1] for token in
                    tokenize.generate_tokens(io.StringIO(source).readline)
                    if token.type == tokenize.COMMENT and TOOLING_COMMENT.match(token.string)}
    except (tokenize.TokenError, SyntaxError, IndentationError):  # not Python (a magic, a shell line): by line
        comments = {}
        for number, line in enumerate(source.split("\n"), start=1):
            match = re.search(r"(^|\s)" + TOOLING_COMMENT.pattern, line)
            if match and "'" not in line[:match.start()] and '"' not in line[:match.start()]:
                comments[number] = match.start() + len(match.group(1))
    if not comments:
        return source
    out = []
    for number, line in enumerate(source.split("\n"), start=1):
        if number in comments:
            line = line[: comments[number]].rstrip()
            if not line.strip():
                continue
        out.append(line)
    return "\n".join(out)


def student_cell(cell, stub: bool = True, where: str = ""):
    """Turn one cell into its student form, in place (``stub=False``: leave solution regions to nbgrader)."""
    tags = cell.get("metadata", {}).get("tags", [])
    if stub:
        source, found = stub_solutions(cell.source, code=cell.cell_type == "code", where=where)
        if found and not is_solution_cell(cell):
            raise StudentCopyError(f"{where}a solution region in a cell without nbgrader solution metadata: "
                                   'give the cell {"nbgrader": {"solution": true, "grade_id": ...}} '
                                   "(see docs/teaching.md)")
        if is_solution_cell(cell) and not found:
            source = "\n".join(CODE_STUB if cell.cell_type == "code" else TEXT_STUB)
        cell.source = source
    if cell.cell_type != "code":
        return cell
    if DEMO_MISTAKE in tags:
        cell.source = DEMO_COMMENT
    else:
        cell.source = strip_tooling_comments(cell.source)
    if KEEP_OUTPUT not in tags and DEMO_MISTAKE not in tags:
        cell.outputs = []
        cell.execution_count = None
    return cell


def student_notebook(nb, name: str = "notebook"):
    """A student copy of ``nb`` (the original is left alone); StudentCopyError names the cell at fault."""
    nb = nbformat.from_dict(nb)
    for index, cell in enumerate(nb.cells, start=1):
        student_cell(cell, where=f"{name}, cell {index}: ")
    nb.metadata.pop("widgets", None)
    return nb


def read_student_copy(path: Path):
    """The notebook at ``path`` and its student copy; StudentCopyError (one line) when either cannot be made."""
    try:
        nb = nbformat.read(path, as_version=4)
    except OSError as err:
        raise StudentCopyError(f"cannot read {path}: {err.strerror or err}") from None
    except Exception as err:  # not JSON, or JSON that is not a notebook: nbformat raises many kinds
        raise StudentCopyError(f"{path.name} is not a Jupyter notebook ({type(err).__name__}): "
                               "save it from Jupyter again or leave it out") from None
    try:
        return nb, student_notebook(nb, path.name)
    except StudentCopyError:
        raise
    except Exception as err:  # valid JSON with cells of the wrong shape
        raise StudentCopyError(f"{path.name} is not a Jupyter notebook ({type(err).__name__}: "
                               f"{one_line(err)}): save it from Jupyter again or leave it out") from None


class StudentCopy(Preprocessor):
    """For nbgrader's generate_assignment, in place of its ClearOutput: tags, tooling comments, outputs.

    nbgrader's own ClearSolutions stubs the solutions before this runs.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("enabled", True)   # nbconvert's preprocessors are off unless enabled
        super().__init__(**kwargs)

    def preprocess(self, nb, resources):
        nb, resources = super().preprocess(nb, resources)
        nb.metadata.pop("widgets", None)
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        return student_cell(cell, stub=False), resources


SOLUTIONS = Path(__file__).resolve().parent.parent / "notebooks"   # the solution notebooks: never written into


def same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b) or a.resolve() == b.resolve()
    except OSError:
        return False


def out_problem(out: Path, sources: list[Path]) -> str | None:
    """Why the student copies of ``sources`` may not be written into the folder ``out``, or None."""
    folder = out.expanduser().resolve()
    existing = next(path for path in [folder, *folder.parents] if path.exists())
    if not existing.is_dir():
        return f"--out {out}: {existing} is a file, not a folder: give a folder"
    if folder == SOLUTIONS or SOLUTIONS in folder.parents:
        return (f"--out {out} is inside {SOLUTIONS.name}/, the folder of the solution notebooks: choose a folder "
                "outside it")
    names = [path.name for path in sources]
    twice = next((name for name in names if names.count(name) > 1), None)
    if twice:
        return f"two notebooks are named {twice}: their copies would overwrite each other"
    for target in (folder / name for name in names):
        source = next((path for path in sources if same_file(target, path)), None)
        if source is not None:
            return f"--out {out} would overwrite the source {source} (the notebooks' own folder): choose another one"
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in notebooks/")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the student copies into")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(SOLUTIONS.glob("*.ipynb"))
    if not paths:
        print("error: no notebooks found: name them on the command line", file=sys.stderr)
        return 1
    converted = []
    for path in paths:
        try:
            converted.append((path, read_student_copy(path)[1]))
        except StudentCopyError as err:
            print(f"error: {err}; nothing written", file=sys.stderr)
            return 1
    problem = out_problem(args.out, paths)
    if problem:
        print(f"error: {problem}; nothing written", file=sys.stderr)
        return 1
    copies = {args.out / path.name: lambda fp, nb=nb: nbformat.write(nb, codecs.getwriter("utf-8")(fp))
              for path, nb in converted}
    return write_files(copies, args.out)


def write_files(files: dict, folder: Path) -> int:
    """Write every ``target: fill`` of ``files`` (``fill(fp)`` writes the bytes into the open file ``fp``), each
    to a temporary file beside its target first, then all into place: after an OSError nothing is half-written
    or left behind.  Says "wrote TARGET" for each; returns the exit code (1, with one line naming ``folder``)."""
    parts = []
    try:
        for target, fill in files.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("wb", dir=target.parent, suffix=".part", delete=False) as part:
                parts.append((Path(part.name), target))
                fill(part)
        for part, target in parts:
            os.replace(part, target)
            print(f"wrote {target}")
    except OSError as err:
        for part, _ in parts:
            part.unlink(missing_ok=True)
        print(f"error: cannot write into {folder}: {one_line(err)}", file=sys.stderr)
        return 1
    return 0


def one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
