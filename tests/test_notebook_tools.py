"""Tests for tools/make_student_version.py and the output checker of tools/build_notebooks.py.

The student copies of the course's own notebooks are tested in test_nbgrader.py."""

from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course_tools import load_tool
from nst_helpers import checks
from nst_helpers.checks.engine import COMMON_MISTAKES, Mistakes, reports

ROOT = Path(__file__).resolve().parent.parent


student = load_tool("make_student_version")
build = load_tool("build_notebooks")

SOLUTION_CELL = """def gram(features, normalize=True):
    \"\"\"Docstring stays.\"\"\"
    n = features.shape[0]
    ### BEGIN SOLUTION
    secret_answer = features * 2
    return secret_answer
    ### END SOLUTION


print("after the function")"""
SOLUTION_META = {"nbgrader": {"grade": False, "grade_id": "t-gram", "locked": False, "schema_version": 3,
                              "solution": True, "task": False}}


def _exercise_notebook():
    nb = new_notebook()
    nb.cells = [new_markdown_cell("# Title\nThe solution goes between the markers."),
                new_code_cell(SOLUTION_CELL, execution_count=3, metadata=SOLUTION_META,
                              outputs=[new_output("stream", name="stdout", text="after the function\n")]),
                new_code_cell("# NBVAL_CHECK_OUTPUT\nx = 1  # noqa: E501\ny = '# noqa stays in a string'",
                              execution_count=4, outputs=[new_output("stream", name="stdout", text="1\n")]),
                new_code_cell("print('figure')", execution_count=5, metadata={"tags": ["keep-output"]},
                              outputs=[new_output("stream", name="stdout", text="figure\n")]),
                new_code_cell("secret_answer = 2  # the mistake", execution_count=6,
                              metadata={"tags": ["demo-mistake"]},
                              outputs=[new_output("stream", name="stdout", text="❌ wrong\n")])]
    return nb


def test_student_version_stubs_solutions_strips_tooling_and_applies_tags(tmp_path, capsys):
    path = tmp_path / "nb.ipynb"
    nbformat.write(_exercise_notebook(), path)
    assert student.main([str(path), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 'out' / 'nb.ipynb'}\n"
    result = nbformat.read(tmp_path / "out" / "nb.ipynb", as_version=4)
    assert result.cells[1].source.splitlines() == [
        "def gram(features, normalize=True):", '    """Docstring stays."""', "    n = features.shape[0]",
        "    # YOUR CODE HERE", "    raise NotImplementedError()", "", "", 'print("after the function")']
    assert result.cells[0].source == "# Title\nThe solution goes between the markers."
    assert result.cells[2].source == "x = 1\ny = '# noqa stays in a string'"
    assert [c.outputs for c in result.cells[1:3]] == [[], []]
    assert result.cells[3].outputs[0]["text"] == "figure\n"                                    # keep-output
    assert result.cells[4].source == student.DEMO_COMMENT and result.cells[4].outputs           # demo-mistake
    assert "secret_answer" not in nbformat.writes(result)


def test_student_stub_raises_not_implemented():
    namespace = {}
    exec(student.stub_solutions(SOLUTION_CELL)[0], namespace)  # noqa: S102 - our own test code
    with pytest.raises(NotImplementedError):
        namespace["gram"](SimpleNamespace(shape=(2, 3)))


def test_solution_at_top_level_and_at_end_without_newline():
    assert student.stub_solutions("a = 1\n### BEGIN SOLUTION\nb = 2\n### END SOLUTION") == \
        ("a = 1\n# YOUR CODE HERE\nraise NotImplementedError()", True)


def test_solution_cell_without_markers_becomes_the_stub():
    cell = new_code_cell("answer = 42", metadata=SOLUTION_META)
    assert student.student_cell(cell).source == "# YOUR CODE HERE\nraise NotImplementedError()"


@pytest.mark.parametrize("source", ["### BEGIN SOLUTION\nx = 1\n", "x = 1\n### END SOLUTION\n",
                                    "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n"])
def test_unmatched_markers_are_errors(source):
    with pytest.raises(student.StudentCopyError, match="SOLUTION"):
        student.stub_solutions(source)


@pytest.mark.parametrize("change, expected", [
    (lambda nb: nb.cells[1].metadata.clear(), "cell 2: a solution region in a cell without nbgrader solution"),
    (lambda nb: setattr(nb.cells[2], "source", "x = 1\n### END SOLUTION"), "cell 3: line 2: ### END SOLUTION"),
])
def test_bad_notebooks_are_refused_and_nothing_is_written(tmp_path, capsys, change, expected):
    good, bad = tmp_path / "a.ipynb", tmp_path / "b.ipynb"
    nbformat.write(_exercise_notebook(), good)
    nb = _exercise_notebook()
    change(nb)
    nbformat.write(nb, bad)
    assert student.main(["--out", str(tmp_path / "out"), str(good), str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: b.ipynb, ") and expected in err, err
    assert not (tmp_path / "out").exists()


def test_student_version_needs_an_output_folder_and_never_overwrites_its_source(tmp_path, capsys):
    path = tmp_path / "nb.ipynb"
    nbformat.write(_exercise_notebook(), path)
    with pytest.raises(SystemExit):
        student.main([str(path)])
    assert student.main([str(path), "--out", str(tmp_path)]) == 1
    assert "notebooks' own folder" in capsys.readouterr().err
    assert nbformat.read(path, as_version=4).cells[1].source == SOLUTION_CELL


def _listing(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def test_the_solution_notebooks_folder_is_the_courses():
    assert student.SOLUTIONS == ROOT / "notebooks"


@pytest.mark.parametrize("out", ["notebooks", "notebooks/handout", "notebooks/./x/../handout"])
def test_student_version_never_writes_into_the_solution_notebooks_folder(tmp_path, capsys, monkeypatch, out):
    solutions = tmp_path / "notebooks"  # a stand-in for the course's notebooks/, which a failing run would harm
    solutions.mkdir()
    nbformat.write(_exercise_notebook(), solutions / "01_content_loss.ipynb")
    monkeypatch.setattr(student, "SOLUTIONS", solutions, raising=False)
    elsewhere = tmp_path / "some" / "where" / "01_content_loss.ipynb"
    elsewhere.parent.mkdir(parents=True)
    nbformat.write(_exercise_notebook(), elsewhere)
    before = _listing(tmp_path)
    assert student.main(["--out", str(tmp_path / out), str(elsewhere)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "solution notebooks" in err and "nothing written" in err, err
    assert _listing(tmp_path) == before
    assert nbformat.read(solutions / "01_content_loss.ipynb", as_version=4).cells[1].source == SOLUTION_CELL


def test_student_version_never_writes_over_a_source_through_a_link(tmp_path, capsys):
    path = tmp_path / "nb.ipynb"
    nbformat.write(_exercise_notebook(), path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "nb.ipynb").symlink_to(path)
    assert student.main([str(path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "overwrite the source" in err, err
    assert nbformat.read(path, as_version=4).cells[1].source == SOLUTION_CELL


@pytest.mark.parametrize("case", ["out is a file", "out below a file", "not JSON", "JSON, not a notebook",
                                  "a folder", "same name twice"])
def test_student_version_bad_arguments_one_line_nothing_written(tmp_path, capsys, case):
    good = tmp_path / "nb.ipynb"
    nbformat.write(_exercise_notebook(), good)
    out = tmp_path / "out"
    sources = [good]
    if case == "out is a file":
        out.write_text("a file\n")
    elif case == "out below a file":
        (tmp_path / "afile").write_text("a file\n")
        out = tmp_path / "afile" / "out"
    elif case in ("not JSON", "JSON, not a notebook"):
        sources.append(tmp_path / "bad.ipynb")
        sources[-1].write_text("not json at all" if case == "not JSON" else '{"cells": 5, "nbformat": 4}')
    elif case == "a folder":
        sources.append(tmp_path / "folder.ipynb")
        sources[-1].mkdir()
    else:
        (tmp_path / "other").mkdir()
        sources.append(tmp_path / "other" / "nb.ipynb")
        nbformat.write(_exercise_notebook(), sources[-1])
    before = _listing(tmp_path)
    assert student.main(["--out", str(out), *map(str, sources)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    assert _listing(tmp_path) == before


def test_student_version_leaves_nothing_half_written(tmp_path, capsys, monkeypatch):
    paths = [tmp_path / "a.ipynb", tmp_path / "b.ipynb"]
    for path in paths:
        nbformat.write(_exercise_notebook(), path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.ipynb").write_text("an older copy\n")
    real_write, calls = student.nbformat.write, []

    def write_then_fail(nb, fp, **kwargs):
        calls.append(fp)
        if len(calls) == 2:
            fp.write("{ half")
            raise OSError(28, "No space left on device")
        return real_write(nb, fp, **kwargs)

    monkeypatch.setattr(student.nbformat, "write", write_then_fail)
    assert student.main(["--out", str(tmp_path / "out"), *map(str, paths)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left" in err, err
    assert _listing(tmp_path / "out") == ["a.ipynb"]
    assert (tmp_path / "out" / "a.ipynb").read_text() == "an older copy\n"


# --- the checker of build_notebooks --------------------------------------------------------------

def _executed(*outputs, source="print(1)"):
    nb = new_notebook()
    nb.cells = [new_code_cell(source, execution_count=1, outputs=list(outputs))]
    return nb


def test_clean_notebook_has_no_problems():
    nb = _executed(new_output("stream", name="stdout", text="loss 0.5\n"),
                   new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}),
                   new_output("stream", name="stderr", text="stylize: 100%|██████████| 50/50 [00:03<00:00]\n"))
    assert build.check_notebook(nb, size_bytes=1000) == []


@pytest.mark.parametrize("output, expected", [
    (new_output("stream", name="stderr", text="something went to stderr\n"), "stderr"),
    (new_output("display_data", data={"image/svg+xml": "<svg></svg>", "text/plain": "<Figure>"}), "SVG"),
    (new_output("stream", name="stdout", text="saved to /home/alice/out.png\n"), "absolute path"),
    (new_output("execute_result", data={"text/plain": "PosixPath('/home/learner/cache')"}, execution_count=1),
     "absolute path"),
    (new_output("stream", name="stdout", text="x.py:3: UserWarning: careful\n"), "warning"),
    (new_output("error", ename="ValueError", evalue="bad", traceback=["ValueError: bad"]), "error output"),
])
def test_checker_flags_problems(output, expected):
    problems = build.check_notebook(_executed(output))
    assert len(problems) == 1 and expected in problems[0], problems


def test_checker_flags_absolute_paths_in_sources_and_large_files():
    assert "absolute path" in build.check_notebook(_executed(source='load_image("/Users/bob/cat.jpg")'))[0]
    assert "MB" in build.check_notebook(_executed(), size_bytes=3 * 2**20)[0]


def test_urls_and_relative_paths_are_not_absolute_paths():
    text = "see https://example.org/home/page and data/tmp/x.png, ~/tmp is fine too\n"
    assert build.check_notebook(_executed(new_output("stream", name="stdout", text=text))) == []


def test_clean_metadata_drops_timings_and_sets_the_kernel():
    nb = _executed()
    nb.cells[0].metadata["execution"] = {"iopub.execute_input": "2024-01-01T00:00:00"}
    nb.metadata["kernelspec"] = {"name": "venv", "display_name": "venv"}
    build.clean_metadata(nb)
    assert "execution" not in nb.cells[0].metadata
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_clean_metadata_drops_the_pictures_kept_in_widget_state():
    nb = _executed()
    picture = {"encoding": "base64", "path": ["value"], "data": "iVBORw0KGgo" * 1000}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"version_major": 2, "state": {
        "a": {"model_name": "ImageModel", "state": {"format": "png", "value": {}}, "buffers": [picture]},
        "b": {"model_name": "HTMLModel", "state": {"value": "<b>kept</b>"}}}}}
    build.clean_metadata(nb)
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert state["a"]["buffers"] == [] and "value" not in state["a"]["state"]
    assert state["a"]["state"]["format"] == "png"
    assert state["b"]["state"]["value"] == "<b>kept</b>"


# --- the tables of the teacher's guide ------------------------------------------------------------

tables = load_tool("teaching_tables")


def _fake_checks():
    """A module of two checks declared as the package's are: one names three mistakes, the other none of its own."""
    table = Mistakes({"wrong_scale": ("off by {n} times", "divide."),
                      "first_item_only": ("only the first item", "loop."),
                      "first_item_only/last": ("only the last item", "loop.")})

    @reports(table.only("wrong_scale"))
    def helper():
        raise table("wrong_scale", n=3)

    @reports(table.only("first_item_only", "first_item_only/last"), helper)
    def check_a(fn, graded=True):
        return None

    @reports(COMMON_MISTAKES.only("returned_none"))
    def check_b(fn, graded=True):
        return None
    return SimpleNamespace(__all__=["check_a", "check_b", "helper"], check_a=check_a, check_b=check_b, helper=helper)


def test_check_mistakes_are_what_each_check_declares():
    found = tables.check_mistakes(_fake_checks())
    assert found == {"check_a": (("first_item_only", "only the first item"), ("first_item_only", "only the last item"),
                                 ("wrong_scale", "off by … times")),
                     "check_b": ()}


def test_the_packages_checks_each_declare_their_own_mistakes():
    found = tables.check_mistakes(checks)
    assert sorted(found) == sorted(name for name in checks.__all__ if name.startswith("check_")) and len(found) >= 14
    assert all(found.values())
    assert ("first_item_only", "only the first batch item is right") in found["check_gram_matrix"]
    assert not any(pair in COMMON_MISTAKES.listed() for pairs in found.values() for pair in pairs)


def test_exercise_table_lists_points_and_the_checks_mistakes(tmp_path):
    nb = _exercise_notebook()
    nb.cells.insert(2, new_code_cell("checks.check_a(gram)", metadata={"nbgrader": {
        "grade": True, "grade_id": "t-gram-check", "locked": True, "points": 3, "schema_version": 3,
        "solution": False, "task": False}}))
    path = tmp_path / "07_fake.ipynb"
    nbformat.write(nb, path)
    text = tables.tables([path], tables.check_mistakes(_fake_checks()), (("not_implemented", "not written yet"),))
    assert "| `07_fake` |" in text and "`t-gram` (3)" in text
    assert "| `check_a` | `t-gram` | " in text and "only the first item (`first_item_only`)" in text
    assert "| `check_b` | — | — |" in text
    assert "All checks also name (from the runner they share): not written yet (`not_implemented`)." in text


def test_exercise_table_lists_answers_graded_by_hand_with_their_points(tmp_path):
    nb = _exercise_notebook()
    nb.cells.append(new_markdown_cell("A sample answer.", metadata={"nbgrader": {
        "grade": True, "grade_id": "t-essay", "locked": False, "points": 4, "schema_version": 3,
        "solution": True, "task": False}}))
    path = tmp_path / "07_fake.ipynb"
    nbformat.write(nb, path)
    found = tables.exercises(nbformat.read(path, as_version=4))
    assert found[-1] == {"id": "t-essay", "points": 4, "checks": [], "by_hand": True}
    assert not any(exercise["by_hand"] for exercise in found[:-1])
    assert "`t-essay` (4, by hand)" in tables.tables([path], tables.check_mistakes(_fake_checks()),
                                                 (("not_implemented", "not written yet"),))


def _png(image) -> str:
    import base64
    import io

    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def test_figures_are_stored_with_a_palette_when_that_is_smaller():
    import base64
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8))          # a stylised picture's grain
    see_through = Image.fromarray(rng.integers(0, 256, (8, 8, 4), dtype=np.uint8), "RGBA")
    nb = _executed(new_output("display_data", data={"image/png": _png(noisy), "text/plain": "<Figure>"}),
                   new_output("display_data", data={"image/png": _png(see_through), "text/plain": "<Figure>"}))
    before = [output["data"]["image/png"] for output in nb.cells[0].outputs]
    assert build.compact_images(nb) > 0
    after = [output["data"]["image/png"] for output in nb.cells[0].outputs]
    stored = Image.open(io.BytesIO(base64.b64decode(after[0])))
    assert stored.format == "PNG" and stored.mode == "P" and stored.size == noisy.size
    assert len(after[0]) < len(before[0])
    assert after[1] == before[1]                       # transparency is kept as it was
    assert np.abs(np.asarray(stored.convert("RGB"), dtype=int) - np.asarray(noisy, dtype=int)).mean() < 40
