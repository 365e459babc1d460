#!/usr/bin/env python
"""Print the tables of docs/teaching.md that come from the notebooks themselves (paste them over the old ones).

    python tools/teaching_tables.py            # reading times, exercises with points and the mistakes checked

Reading time: prose at 150 words a minute plus code at 10 lines a minute (reading, not running).
Exercises: the notebooks' nbgrader metadata (solution cells and the autograded cells after them).
Mistakes: the mistake ids and titles that each check named in a cell can report, as the checks declare
them (``check.mistakes``, and ``COMMON_MISTAKES`` for those every check can name; see nst_helpers.checks).
Running times come from `python tools/build_notebooks.py --quick` (quick mode) and the last full build
(default mode): build_notebooks prints them as a table too.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

from nst_helpers import checks
from nst_helpers.checks.engine import COMMON_MISTAKES

ROOT = Path(__file__).resolve().parent.parent
WORDS_PER_MINUTE, CODE_LINES_PER_MINUTE = 150, 10


def reading_minutes(nb) -> float:
    words = sum(len(c.source.split()) for c in nb.cells if c.cell_type == "markdown")
    code = sum(len([ln for ln in c.source.splitlines() if ln.strip()]) for c in nb.cells if c.cell_type == "code")
    return words / WORDS_PER_MINUTE + code / CODE_LINES_PER_MINUTE


def exercises(nb) -> list[dict]:
    """Per solution cell: its grade_id, the points of the autograded cells after it, the checks they call.

    A solution cell that is graded itself (an answer graded by hand) carries its own points and "by_hand".
    """
    found = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            by_hand = bool(meta.get("grade"))
            found.append({"id": meta.get("grade_id", "?"), "points": int(meta.get("points", 0)) if by_hand else 0,
                          "checks": [], "by_hand": by_hand})
        elif meta.get("grade") and found:
            found[-1]["points"] += int(meta.get("points", 0))
            found[-1]["checks"] += re.findall(r"checks\.(check_\w+)\(", cell.source)
    return found


def check_mistakes(module) -> dict[str, tuple[tuple[str, str], ...]]:
    """check_* name -> the (id, title) pairs it declares it can name, for each public check of ``module``."""
    return {name: getattr(module, name).mistakes for name in module.__all__ if name.startswith("check_")}


def tables(notebooks: list[Path], mistakes: dict[str, tuple], common: tuple[tuple[str, str], ...]) -> str:
    """The tables: ``mistakes`` maps each check to the (id, title) pairs it names, ``common`` what all of them name."""
    lines = ["| notebook | reading (min) | exercises (points) |", "| --- | --- | --- |"]
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        listed = ", ".join(f"`{e['id']}` ({e['points']}{', by hand' if e['by_hand'] else ''})"
                           for e in exercises(nb)) or "none graded yet"
        lines.append(f"| `{path.stem}` | {reading_minutes(nb):.0f} | {listed} |")
    used_by: dict[str, list[str]] = {}
    for path in notebooks:
        for exercise in exercises(nbformat.read(path, as_version=4)):
            for check in exercise["checks"]:
                used_by.setdefault(check, []).append(exercise["id"])
    lines += ["", "| check | graded exercises | mistakes it names |", "| --- | --- | --- |"]
    for check in sorted(set(mistakes) | set(used_by)):
        own = [f"{title} (`{mid}`)" for mid, title in mistakes.get(check, ())]
        users = ", ".join(f"`{e}`" for e in used_by.get(check, [])) or "—"
        lines.append(f"| `{check}` | {users} | {'; '.join(own) or '—'} |")
    if common:
        shared = "; ".join(f"{title} (`{mid}`)" for mid, title in sorted(common))
        lines += ["", f"All checks also name (from the runner they share): {shared}."]
    return "\n".join(lines)


def main(argv=None) -> int:
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    print(tables(notebooks, check_mistakes(checks), COMMON_MISTAKES.listed()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
