#!/usr/bin/env python
"""Set up an nbgrader course folder from the course's notebooks (one assignment per notebook).

    python tools/nbgrader_course.py COURSE_DIR                    # every notebook in notebooks/
    python tools/nbgrader_course.py COURSE_DIR notebooks/01_content_loss.ipynb --force

Writes, and prints, only these paths inside COURSE_DIR:
  nbgrader_config.py                 timeouts, quick-mode grading, the course's release rules
  nst_student_copy.py                a copy of tools/make_student_version.py (the release rules themselves)
  source/<name>/<name>.ipynb         the solution notebooks, one assignment each

Then, inside COURSE_DIR (needs `pip install -e ".[teach]"`):
  nbgrader generate_assignment 01_content_loss     # release/01_content_loss/: the student copy
  nbgrader autograde 01_content_loss               # grades submitted/<student>/01_content_loss/
Existing files are left alone unless --force is given.  Nothing is written (one line says why) when a notebook
is refused or is not a notebook, when COURSE_DIR is a file or lies inside notebooks/, when a folder stands where a
file goes (or the reverse), or when a file would be copied onto itself.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import nbformat

TOOLS = Path(__file__).resolve().parent
COURSE_ID = "neural-style-transfer"
CELL_TIMEOUT_S = 600


def _load_student_rules():
    spec = importlib.util.spec_from_file_location("make_student_version", TOOLS / "make_student_version.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rules = _load_student_rules()


CONFIG = '''\
"""nbgrader configuration of the neural style transfer course (written by tools/nbgrader_course.py)."""
import os
import sys

from nbgrader.preprocessors import (CheckCellMetadata, ClearHiddenTests, ClearMarkScheme, ClearSolutions,
                                    ComputeChecksums, IncludeHeaderFooter, InstantiateTests, LockCells, SaveCells)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nst_student_copy import StudentCopy  # the course's release rules: tags, tooling comments, outputs

c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.course_id = "{course_id}"

# nbgrader's default list, with StudentCopy in the place of ClearOutput: outputs of cells tagged keep-output
# stay, cells tagged demo-mistake show only their output, and tooling comments go.
c.GenerateAssignment.preprocessors = [
    IncludeHeaderFooter, InstantiateTests, LockCells, ClearSolutions, StudentCopy, CheckCellMetadata,
    ComputeChecksums, SaveCells, ClearHiddenTests, ClearMarkScheme, ComputeChecksums, CheckCellMetadata,
]

# A cell may run for minutes in full mode (nbgrader's default limit is 30 s per cell).
c.Execute.timeout = {timeout}
{quick}'''

QUICK = '''
# Grade in quick mode (small images, few optimisation steps): the checks do not depend on it, and a
# submission is graded in seconds.  Set NST_QUICK=0 in the shell to grade with the notebooks' defaults.
os.environ.setdefault("NST_QUICK", "1")
'''


def course_files(notebooks: list[Path], quick: bool = True) -> dict[str, str | Path]:
    """What to write: relative path -> text (or the path of a file to copy).  Refuses bad notebooks."""
    files: dict[str, str | Path] = {
        "nbgrader_config.py": CONFIG.format(course_id=COURSE_ID, timeout=CELL_TIMEOUT_S, quick=QUICK if quick else ""),
        "nst_student_copy.py": TOOLS / "make_student_version.py",
    }
    for path in notebooks:
        rules.read_student_copy(path)          # raises StudentCopyError on a notebook nbgrader would refuse
        files[f"source/{path.stem}/{path.name}"] = path
    return files


def target_problem(course_dir: Path, files: dict[str, str | Path], force: bool) -> str | None:
    """Why ``files`` may not be written into ``course_dir``, or None: checked before anything is written."""
    folder = course_dir.expanduser().resolve()
    if folder == rules.SOLUTIONS or rules.SOLUTIONS in folder.parents:
        return f"{course_dir} is inside {rules.SOLUTIONS.name}/, the folder of the solution notebooks: choose another"
    sources = [content for content in files.values() if isinstance(content, Path)]
    above = next(path for path in [folder, *folder.parents] if path.exists())
    if not above.is_dir():
        return f"{course_dir}: {above} is a file, not a folder: give a folder (it is made when missing)"
    existing = []
    for name in files:
        target = course_dir / name
        parent = next((course_dir / path for path in reversed(Path(name).parents) if path != Path(".")
                       and (course_dir / path).exists() and not (course_dir / path).is_dir()), None)
        if parent is not None:
            return f"{parent} is a file where a folder should be: move it away"
        if target.is_dir():
            return f"{target} is a folder where a file should be: move it away"
        source = next((path for path in sources if rules.same_file(target, path)), None)
        if source is not None:
            return f"{target} is one of the notebooks to copy ({source}): it cannot be its own copy"
        if target.exists():
            existing.append(target)
    if existing and not force:
        return f"{existing[0]} exists ({len(existing)} file(s) in all): use --force to overwrite them"
    return None


def exercises(nb) -> list[tuple[str, int]]:
    """(grade_id, points) of the autograded cells, in order."""
    found = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            found.append((meta.get("grade_id", "?"), int(meta.get("points", 0))))
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("course_dir", type=Path, help="the nbgrader course folder to write into")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in notebooks/")
    parser.add_argument("--force", action="store_true", help="overwrite files that are already there")
    parser.add_argument("--full", action="store_true", help="grade with the notebooks' defaults, not quick mode")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((TOOLS.parent / "notebooks").glob("*.ipynb"))
    if not notebooks:
        print("error: no notebooks found: name them on the command line", file=sys.stderr)
        return 1
    try:
        files = course_files(notebooks, quick=not args.full)
    except rules.StudentCopyError as err:
        print(f"error: {err}; nothing written", file=sys.stderr)
        return 1
    problem = target_problem(args.course_dir, files, args.force)
    if problem:
        print(f"error: {problem}; nothing written", file=sys.stderr)
        return 1
    writes = {args.course_dir / name: lambda fp, content=content: fp.write(
        content.read_bytes() if isinstance(content, Path) else content.encode()) for name, content in files.items()}
    if rules.write_files(writes, args.course_dir):
        return 1
    for path in notebooks:
        graded = exercises(nbformat.read(path, as_version=4))
        print(f"assignment {path.stem}: {len(graded)} graded cell(s), {sum(p for _, p in graded)} point(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
