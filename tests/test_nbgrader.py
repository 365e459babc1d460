"""Coursework: student copies keep their secrets and still run; nbgrader releases and grades the course.

Runs on every notebook in notebooks/ that has graded cells, and on a small fixture notebook
(tests/exercise_fixture.py) so that the pipeline is tested even before the notebooks are graded.
A notebook without graded cells is skipped with that reason; under CI (CI set) at least one
notebook of the course must be graded.

The grading tests run the real `nbgrader generate_assignment` and `nbgrader autograde` once for
the whole module (NST_QUICK=1): the solution notebooks, the released copies and, for the fixture
and the first graded notebook, a submission with one planted mistake.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import exercise_fixture
from course_tools import load_tool

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false")
KERNEL_TIMEOUT_S = 600


student = load_tool("make_student_version")


# --- reading the convention ---------------------------------------------------------------------

def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def autograded_ids(nb) -> list[str]:
    """grade_ids of the autograded test cells (grade, not solution), in order."""
    return [nbgrader_meta(c)["grade_id"] for c in nb.cells
            if nbgrader_meta(c).get("grade") and not nbgrader_meta(c).get("solution")]


def exercises(nb) -> dict[str, list[str]]:
    """solution grade_id -> the grade_ids of the autograded cells after it (up to the next solution cell)."""
    found, current = {}, None
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if meta.get("solution"):
            current = meta["grade_id"]
            found[current] = []
        elif meta.get("grade") and current is not None:
            found[current].append(meta["grade_id"])
    return found


def solution_regions(source: str) -> list[str]:
    """The code between each BEGIN/END SOLUTION pair of one cell."""
    return re.findall(r"BEGIN SOLUTION[^\n]*\n(.*?)\n[^\n]*END SOLUTION", source, flags=re.S)


def significant_lines(code: str) -> list[str]:
    """Lines that would give a solution away: not blank, no comment, more than one meaningful token, and not
    a line that only opens a block (`with torch.no_grad():`, `for ... in ...:` say nothing without their body)."""
    trivial_words = {"return", "pass", "else", "try", "finally", "break", "continue"}
    lines = []
    for line in code.splitlines():
        text = line.split("#", 1)[0].strip() if not re.search(r"['\"]", line) else line.strip()
        words = [w for w in re.findall(r"\w+|[^\w\s()\[\]{}:,]", text) if w not in trivial_words]
        if text and not text.startswith("#") and len(words) > 1 and not text.endswith(":"):
            lines.append(text)
    return lines


def _squash(text: str) -> str:
    """Whitespace-insensitive form: no spaces around punctuation, single spaces elsewhere."""
    return re.sub(r"\s*([^\w\s])\s*", r"\1", re.sub(r"\s+", " ", text)).strip()


def notebook_text(nb) -> str:
    """Every code cell's source and every text output of a notebook, squashed line by line.

    Markdown is left out: its instructions are written for the learner on purpose (and its solution
    regions, if any, are stubbed like those of code cells)."""
    parts = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            parts.append(cell.source)
        for output in cell.get("outputs", []):
            parts += [output.get("text", "")] + list(output.get("traceback", []))
            parts += [v if isinstance(v, str) else "".join(v) for k, v in output.get("data", {}).items()
                      if not k.startswith("image/")]
    return "\n".join(_squash(line) for part in parts for line in part.splitlines())


def leaks(solution_nb, student_nb) -> list[str]:
    """The solution lines (of every exercise) found anywhere in the student copy."""
    text = notebook_text(student_nb)
    found = []
    for cell in solution_nb.cells:
        if not nbgrader_meta(cell).get("solution"):
            continue
        regions = solution_regions(cell.source) or [cell.source]
        for line in (ln for region in regions for ln in significant_lines(region)):
            if re.search(r"(?<!\w)" + re.escape(_squash(line)) + r"(?!\w)", text):
                found.append(f"{nbgrader_meta(cell)['grade_id']}: {line}")
    return found


def fixture_notebook(tmp_path: Path) -> Path:
    path = tmp_path / exercise_fixture.NAME
    nbformat.write(exercise_fixture.notebook(), path)
    return path


def _graded_or_skip(path: Path):
    nb = nbformat.read(path, as_version=4)
    if not autograded_ids(nb):
        pytest.skip(f"{path.name} has no nbgrader-graded cells yet")
    return nb


# --- no leaks -------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_copy_shows_no_solution_line(path):
    nb = _graded_or_skip(path)
    copy = student.student_notebook(nb, path.name)
    assert exercises(nb), f"{path.name}: graded cells but no solution cell"
    assert leaks(nb, copy) == []


def test_fixture_student_copy_shows_no_solution_line(tmp_path):
    nb = exercise_fixture.notebook()
    copy = student.student_notebook(nb)
    assert leaks(nb, copy) == []
    assert copy.cells[2].outputs[0]["text"] == exercise_fixture.KEPT_TEXT          # keep-output
    assert copy.cells[5].source == student.DEMO_COMMENT and copy.cells[5].outputs  # demo-mistake


def test_the_leak_test_finds_an_untagged_demonstration():
    nb = exercise_fixture.notebook()
    nb.cells[5].metadata["tags"] = []                       # the demo of a mistake, not tagged
    found = leaks(nb, student.student_notebook(nb))
    assert found and all(item.startswith("fx-gram:") for item in found)
    assert any("flat_features = features.reshape" in item for item in found)


def test_significant_lines_leave_out_trivial_ones():
    code = ("    # a comment\n\n    return gram\n    gram = gram / (c * h * w)  # normalise\n    pass\n    x.sum()\n"
            "    with torch.no_grad():\n    for i in range(n):")
    assert significant_lines(code) == ["gram = gram / (c * h * w)", "x.sum()"]


def test_some_course_notebook_is_graded():
    graded = [p.name for p in NOTEBOOKS if autograded_ids(nbformat.read(p, as_version=4))]
    if not graded:
        message = "no notebook in notebooks/ has nbgrader-graded cells"
        if IN_CI:
            pytest.fail(message + ": the course cannot be assigned (see docs/teaching.md, 'The exercise convention')")
        pytest.skip(message + " yet")
    assert len(graded) >= 1


# --- the student copy runs top to bottom (learning mode) ------------------------------------------

def run_notebook(path: Path, env: dict[str, str]) -> nbformat.NotebookNode:
    """Execute a notebook in its folder with nbclient under ``env`` added to os.environ; errors stay in the cells."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    saved = {key: os.environ.get(key) for key in (*env, "NBGRADER_EXECUTION", "NST_GRADING")}
    os.environ.pop("NBGRADER_EXECUTION", None)
    os.environ.pop("NST_GRADING", None)
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=KERNEL_TIMEOUT_S, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return nb


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []))


def _graded_cell(cell) -> bool:
    return bool(nbgrader_meta(cell).get("grade") and not nbgrader_meta(cell).get("solution"))


def assert_runs_with_stubs(nb, name, grading=False):
    """Every cell ran; every check printed its failure and (in grading mode only) raised ExerciseFailed."""
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert all(c.execution_count is not None for c in code), f"{name}: not every cell ran"
    errors = [(i, o.get("ename"), o.get("evalue", "")[:80]) for i, c in enumerate(nb.cells, 1)
              for o in c.get("outputs", []) if o.get("output_type") == "error"
              and not (grading and _graded_cell(c) and o.get("ename") == "ExerciseFailed")]
    assert errors == [], f"{name}: error outputs in the student copy (cell, error, message)"
    for cell in filter(_graded_cell, nb.cells):
        assert "❌" in _text(cell), f"{name}: {nbgrader_meta(cell)['grade_id']} printed no failure"
        raised = any(o.get("ename") == "ExerciseFailed" for o in cell.get("outputs", []))
        assert raised == grading, f"{name}: {nbgrader_meta(cell)['grade_id']} raised={raised} in grading={grading}"


def test_fixture_student_copy_runs_with_the_reference_stand_in(tmp_path):
    """Learning mode: failed checks only print, the reference stands in, no cell fails."""
    copy = tmp_path / "student" / exercise_fixture.NAME
    assert student.main(["--out", str(copy.parent), str(fixture_notebook(tmp_path))]) == 0
    nb = run_notebook(copy, {"NST_QUICK": "1"})
    assert_runs_with_stubs(nb, copy.name)
    assert "↪" in _text(nb.cells[4]) and "↪" in _text(nb.cells[7])                # fallback notices
    assert _text(nb.cells[8]) == "(1, 3, 3) True\n"                                 # later cells use the reference


# --- nbgrader: release and autograde ----------------------------------------------------------------

STUDENTS = ("solved", "released", "one_mistake")


def nbgrader(course: Path, *args: str) -> str:
    """Run the nbgrader command line in the course folder; its output, or a failure with its log."""
    # nbgrader runs `alembic` (installed next to it) to set up its database: put this Python's scripts first.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "NST_QUICK": "1", "PATH": path}
    env.pop("NST_GRADING", None)
    # No time limit here: nbgrader stops any cell after the course's 600 s, and a loaded machine may need long.
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, text=True,
                          capture_output=True)
    log = done.stdout + done.stderr
    assert done.returncode == 0 and "[ERROR]" not in log, f"nbgrader {' '.join(args)} failed:\n{log[-3000:]}"
    return log


def plant_mistake(nb, solution_id: str, replacement: str | None = None):
    """A copy of ``nb`` whose exercise ``solution_id`` has ``replacement`` for its source (default: the stub)."""
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        if nbgrader_meta(cell).get("grade_id") == solution_id:
            cell.source = replacement if replacement is not None else student.stub_solutions(cell.source)[0]
            return nb
    raise AssertionError(f"no solution cell {solution_id}")


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory):
    """An nbgrader course with the fixture and every graded notebook, released and autograded."""
    pytest.importorskip("nbgrader", reason='nbgrader is not installed: pip install -e ".[teach]"')
    work = tmp_path_factory.mktemp("nbgrader")
    fixture = fixture_notebook(work)
    graded = [p for p in NOTEBOOKS if autograded_ids(nbformat.read(p, as_version=4))]
    course = work / "course"
    setup = subprocess.run([sys.executable, str(ROOT / "tools" / "nbgrader_course.py"), str(course), str(fixture),
                            *map(str, graded)], text=True, capture_output=True, timeout=120)
    assert setup.returncode == 0, setup.stderr
    assert "wrote" in setup.stdout and str(course / "nbgrader_config.py") in setup.stdout

    nbgrader(course, "generate_assignment", "*")
    planted = {fixture.stem: ("fx-gram", exercise_fixture.GRAM_UNNORMALISED)}
    if graded:
        first = nbformat.read(graded[0], as_version=4)
        planted[graded[0].stem] = (next(iter(exercises(first))), None)
    for path in [fixture, *graded]:
        name = path.stem
        source = nbformat.read(course / "source" / name / path.name, as_version=4)
        released = nbformat.read(course / "release" / name / path.name, as_version=4)
        submissions = {"solved": source, "released": released}
        if name in planted:
            submissions["one_mistake"] = plant_mistake(source, *planted[name])
        for who, nb in submissions.items():
            folder = course / "submitted" / who / name
            folder.mkdir(parents=True)
            nbformat.write(nb, folder / path.name)
    for path in [fixture, *graded]:
        nbgrader(course, "autograde", path.stem)

    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for path in [fixture, *graded]:
            for who in STUDENTS:
                try:
                    submission = gradebook.find_submission_notebook(path.stem, path.stem, who)
                except Exception:  # MissingEntry: that student did not submit this one
                    continue
                scores[path.stem, who] = {g.cell.name: (g.score, g.max_score) for g in submission.grades}
    return {"course": course, "scores": scores, "planted": planted, "fixture": fixture}


def _expect_scores(graded_course, name, nb):
    scores, planted = graded_course["scores"], graded_course["planted"]
    ids = autograded_ids(nb)
    solved = scores[name, "solved"]
    assert {i: solved[i] for i in ids} == {i: (solved[i][1], solved[i][1]) for i in ids}, "solutions lose points"
    assert all(solved[i][1] > 0 for i in ids), "an autograded cell without points"
    released = scores[name, "released"]
    assert {i: released[i][0] for i in ids} == {i: 0 for i in ids}, "the released copy scores points"
    if name in planted:
        lost = set(exercises(nb)[planted[name][0]])
        mistake = scores[name, "one_mistake"]
        assert {i: mistake[i][0] for i in ids} == {i: 0 if i in lost else solved[i][1] for i in ids}


def test_nbgrader_grades_the_fixture(graded_course):
    _expect_scores(graded_course, graded_course["fixture"].stem, exercise_fixture.notebook())
    scores = graded_course["scores"]["fx_exercises", "one_mistake"]
    assert scores == {"fx-gram-check": (0, 2), "fx-tv-check": (3, 3)}


def test_nbgrader_release_is_the_student_copy(graded_course):
    """nbgrader's release and make_student_version make the same cells (sources, kept outputs)."""
    course = graded_course["course"]
    for source in (course / "source").glob("*/*.ipynb"):
        ours = student.student_notebook(nbformat.read(source, as_version=4), source.name)
        theirs = nbformat.read(course / "release" / source.parent.name / source.name, as_version=4)
        assert [c.source for c in theirs.cells] == [c.source for c in ours.cells], source.name
        assert [c.get("outputs", []) for c in theirs.cells] == [c.get("outputs", []) for c in ours.cells]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_nbgrader_grades_the_notebook(path, graded_course):
    nb = _graded_or_skip(path)
    _expect_scores(graded_course, path.stem, nb)


@pytest.mark.parametrize("path", [None, *NOTEBOOKS], ids=lambda p: "fixture" if p is None else p.stem)
def test_released_copy_runs_top_to_bottom(path, graded_course):
    """The student copy, as nbgrader ran it (NST_QUICK=1, grading mode): each check prints its failure and
    raises, and every other cell runs without error on the reference stand-ins.  (Learning mode differs only
    in not raising: see tests/checks/ and the fixture's learning-mode run above.)"""
    path = graded_course["fixture"] if path is None else path
    _graded_or_skip(path)
    ran = graded_course["course"] / "autograded" / "released" / path.stem / path.name
    assert_runs_with_stubs(nbformat.read(ran, as_version=4), path.name, grading=True)


def test_course_setup_refuses_to_overwrite(tmp_path):
    fixture = fixture_notebook(tmp_path)
    tool = load_tool("nbgrader_course")
    assert tool.main([str(tmp_path / "course"), str(fixture)]) == 0
    config = tmp_path / "course" / "nbgrader_config.py"
    config.write_text("# the teacher's own\n")
    assert tool.main([str(tmp_path / "course"), str(fixture)]) == 1
    assert config.read_text() == "# the teacher's own\n"
    assert tool.main([str(tmp_path / "course"), str(fixture), "--force"]) == 0
    assert "c.Execute.timeout = 600" in config.read_text() and "NST_QUICK" in config.read_text()


def _tree(folder: Path) -> dict[str, bytes | None]:
    return {str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None
            for path in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("case", ["course is a file", "config is a folder", "not JSON", "target is a source",
                                  "inside the solutions", "a folder is a file"])
def test_course_setup_bad_places_one_line_nothing_written(tmp_path, capsys, monkeypatch, case):
    tool = load_tool("nbgrader_course")
    fixture = fixture_notebook(tmp_path)
    course, sources = tmp_path / "course", [fixture]
    if case == "course is a file":
        course.write_text("a file\n")
    elif case == "config is a folder":
        (course / "nbgrader_config.py").mkdir(parents=True)
    elif case == "not JSON":
        sources.append(tmp_path / "broken.ipynb")
        sources[-1].write_text("{ not json")
    elif case == "target is a source":
        assert tool.main([str(course), str(fixture)]) == 0
        (course / "nbgrader_config.py").write_text("# the teacher's own\n")
        sources = [course / "source" / fixture.stem / fixture.name]
    elif case == "inside the solutions":
        monkeypatch.setattr(tool.rules, "SOLUTIONS", tmp_path, raising=False)
    else:
        (course / "source").mkdir(parents=True)
        (course / "source" / fixture.stem).write_text("a file\n")
    capsys.readouterr()
    before = _tree(tmp_path)
    assert tool.main([str(course), *map(str, sources), "--force"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("error: ") and "nothing written" in error, error
    assert _tree(tmp_path) == before


def test_course_setup_leaves_nothing_half_written(tmp_path, capsys, monkeypatch):
    tool = load_tool("nbgrader_course")
    fixture = fixture_notebook(tmp_path)
    real_read = Path.read_bytes

    def unreadable_fixture(path):  # the notebook is the last file copied: two files would be written before
        if path == fixture:
            raise OSError(5, "Input/output error")
        return real_read(path)

    monkeypatch.setattr(Path, "read_bytes", unreadable_fixture)
    monkeypatch.setattr(shutil, "copyfile", lambda source, target: unreadable_fixture(Path(source)))
    assert tool.main([str(tmp_path / "course"), str(fixture)]) == 1
    error = capsys.readouterr().err
    assert "Input/output error" in error and error.count("\n") == 1 and "Traceback" not in error
    assert [path for path in (tmp_path / "course").rglob("*") if path.is_file()] == []


def test_course_setup_refuses_an_unmarked_solution_and_writes_nothing(tmp_path, capsys):
    nb = exercise_fixture.notebook()
    del nb.cells[3].metadata["nbgrader"]
    path = tmp_path / "bad.ipynb"
    nbformat.write(nb, path)
    assert load_tool("nbgrader_course").main([str(tmp_path / "course"), str(path)]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "cell 4" in error and "solution metadata" in error
    assert not (tmp_path / "course").exists()
