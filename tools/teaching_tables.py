#!/usr/bin/env python
"""Print the tables of docs/teaching.md that come from the notebooks themselves (paste them over the old ones).

    python tools/teaching_tables.py            # reading times, exercises with points and the mistakes checked

Reading time: prose at 150 words a minute plus code at 10 lines a minute (reading, not running).
Exercises: the notebooks' nbgrader metadata (solution cells and the autograded cells after them).
Mistakes: the mistake ids and titles that each check named in a cell can report, read from the
source of the nst_helpers/checks package (its `Mistake(id, title, ...)` calls, `(id, title, advice)` tuples
and `{id: (title, advice)}` tables, following the helpers each check calls).  Running times come from `python tools/build_notebooks.py --quick`
(quick mode) and the last full build (default mode): build_notebooks prints them as a table too.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
WORDS_PER_MINUTE, CODE_LINES_PER_MINUTE = 150, 10
MISTAKE_ID = re.compile(r"^[a-z]+(?:_[a-z]+)*$")


def reading_minutes(nb) -> float:
    words = sum(len(c.source.split()) for c in nb.cells if c.cell_type == "markdown")
    code = sum(len([ln for ln in c.source.splitlines() if ln.strip()]) for c in nb.cells if c.cell_type == "code")
    return words / WORDS_PER_MINUTE + code / CODE_LINES_PER_MINUTE


def exercises(nb) -> list[dict]:
    """Per solution cell: its grade_id, the points of the autograded cells after it, the checks they call."""
    found = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            found.append({"id": meta.get("grade_id", "?"), "points": 0, "checks": []})
        elif meta.get("grade") and found:
            found[-1]["points"] += int(meta.get("points", 0))
            found[-1]["checks"] += re.findall(r"checks\.(check_\w+)\(", cell.source)
    return found


def _text(node) -> str | None:
    """A string constant, or an f-string with "…" for its values."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return re.sub("…+", "…", "".join(v.value if isinstance(v, ast.Constant) else "…" for v in node.values))
    return None


def _mistakes_in(node) -> list[tuple[str, str]]:
    """(id, title) pairs written directly in ``node``: `_Mistake(id, title, ...)` and `(..., id, title, ...)`."""
    found = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and getattr(sub.func, "id", "") in ("Mistake", "_Mistake") and len(sub.args) >= 2:
            pairs = [(_text(sub.args[0]), _text(sub.args[1]))]
        elif isinstance(sub, ast.Dict):
            pairs = [(_text(key), re.sub(r"\{\w+\}", "…", _text(value.elts[0]) or ""))
                     for key, value in zip(sub.keys, sub.values) if isinstance(value, ast.Tuple) and value.elts]
        elif isinstance(sub, ast.Tuple):
            texts = [_text(item) for item in sub.elts]
            pairs = [(a, b) for a, b in zip(texts, texts[1:]) if a and "_" in a][:1]
        else:
            continue
        found += [(a, b) for a, b in pairs if a and b and MISTAKE_ID.match(a) and not MISTAKE_ID.match(b)]
    return found


def check_mistakes(source: str) -> dict[str, list[tuple[str, str]]]:
    """check_* name -> the (id, title) it can report, following the module's helpers and constants it uses."""
    tree = ast.parse(source)
    defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    defs.update({t.id: n for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)})

    def reach(name, seen):
        if name in seen or name not in defs:
            return
        seen.add(name)
        for sub in ast.walk(defs[name]):
            if isinstance(sub, ast.Name) and sub.id in defs:
                reach(sub.id, seen)

    result = {}
    for name in defs:
        if name.startswith("check_"):
            seen: set[str] = set()
            reach(name, seen)
            pairs = [pair for helper in sorted(seen) for pair in _mistakes_in(defs[helper])]
            result[name] = list(dict.fromkeys(pairs))
    return result


def tables(notebooks: list[Path], checks_source: str) -> str:
    mistakes = check_mistakes(checks_source)
    common = set.intersection(*(set(v) for v in mistakes.values())) if mistakes else set()
    lines = ["| notebook | reading (min) | exercises (points) |", "| --- | --- | --- |"]
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        listed = ", ".join(f"`{e['id']}` ({e['points']})" for e in exercises(nb)) or "none graded yet"
        lines.append(f"| `{path.stem}` | {reading_minutes(nb):.0f} | {listed} |")
    used_by: dict[str, list[str]] = {}
    for path in notebooks:
        for exercise in exercises(nbformat.read(path, as_version=4)):
            for check in exercise["checks"]:
                used_by.setdefault(check, []).append(exercise["id"])
    lines += ["", "| check | graded exercises | mistakes it names |", "| --- | --- | --- |"]
    for check in sorted(set(mistakes) | set(used_by)):
        own = [f"{title} (`{mid}`)" for mid, title in mistakes.get(check, []) if (mid, title) not in common]
        users = ", ".join(f"`{e}`" for e in used_by.get(check, [])) or "—"
        lines.append(f"| `{check}` | {users} | {'; '.join(own) or '—'} |")
    if common:
        shared = "; ".join(f"{title} (`{mid}`)" for mid, title in sorted(common))
        lines += ["", f"All checks also name (from the runner they share): {shared}."]
    return "\n".join(lines)


def main(argv=None) -> int:
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    sources = sorted((ROOT / "nst_helpers" / "checks").glob("*.py"))
    print(tables(notebooks, "\n".join(path.read_text() for path in sources)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
