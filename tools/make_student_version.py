#!/usr/bin/env python
"""Write student copies of the notebooks: solutions replaced by stubs, outputs cleared.

    python tools/make_student_version.py               # notebooks/*.ipynb -> student/
    python tools/make_student_version.py --out handout notebooks/01_content_loss.ipynb

In code cells, every block from a `### BEGIN SOLUTION` line to the next `### END SOLUTION` line
(markers included) becomes `# YOUR CODE HERE` + `raise NotImplementedError()`, indented like the
BEGIN marker (the convention of nbgrader, without needing nbgrader).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def strip_solutions(source: str) -> str:
    """The source with each solution block replaced by an indented stub; ValueError on unmatched markers."""
    out, inside, indent = [], False, ""
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError(f"line {number}: {BEGIN} inside another solution block: close it with {END}")
            inside, indent = True, line[: len(line) - len(line.lstrip())]
        elif stripped == END:
            if not inside:
                raise ValueError(f"line {number}: {END} without a {BEGIN} before it")
            inside = False
            newline = "\n" if line.endswith("\n") else ""
            out += [f"{indent}# YOUR CODE HERE\n", f"{indent}raise NotImplementedError(){newline}"]
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{BEGIN} without a matching {END}: add the END marker")
    return "".join(out)


def student_notebook(nb):
    """A copy of the notebook with solutions stubbed out and all outputs cleared."""
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source)
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("widgets", None)
    return nb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--out", type=Path, default=ROOT / "student", help="output folder (default: student/)")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not paths:
        print("no notebooks found", file=sys.stderr)
        return 1
    converted = []
    for path in paths:
        try:
            converted.append((path, student_notebook(nbformat.read(path, as_version=4))))
        except (ValueError, OSError) as err:
            print(f"{path.name}: {err}", file=sys.stderr)
            return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for path, nb in converted:
        nbformat.write(nb, args.out / path.name)
        print(f"wrote {args.out.name}/{path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
