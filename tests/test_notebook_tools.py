"""Tests for tools/make_student_version.py and the output checker of tools/build_notebooks.py."""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parent.parent


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


student = _load_tool("make_student_version")
build = _load_tool("build_notebooks")

SOLUTION_CELL = '''def gram(features, normalize=True):
    """Docstring stays."""
    n = features.shape[0]
    ### BEGIN SOLUTION
    secret_answer = features * 2
    return secret_answer
    ### END SOLUTION


print("after the function")'''


def _exercise_notebook():
    nb = new_notebook()
    nb.cells = [new_markdown_cell("# Title\n### BEGIN SOLUTION is only text here"),
                new_code_cell(SOLUTION_CELL, execution_count=3,
                              outputs=[new_output("stream", name="stdout", text="after the function\n")]),
                new_code_cell("x = 1  # no solution here", execution_count=4)]
    return nb


def test_student_version_removes_solutions_and_keeps_the_rest(tmp_path):
    path = tmp_path / "nb.ipynb"
    nbformat.write(_exercise_notebook(), path)
    assert student.main([str(path), "--out", str(tmp_path / "out")]) == 0
    result = nbformat.read(tmp_path / "out" / "nb.ipynb", as_version=4)
    source = result.cells[1].source
    assert "secret_answer" not in source and "SOLUTION" not in source
    assert source.splitlines() == [
        "def gram(features, normalize=True):", '    """Docstring stays."""', "    n = features.shape[0]",
        "    # YOUR CODE HERE", "    raise NotImplementedError()", "", "", 'print("after the function")']
    assert result.cells[0].source == "# Title\n### BEGIN SOLUTION is only text here"  # markdown untouched
    assert result.cells[2].source == "x = 1  # no solution here"
    assert all(cell.outputs == [] and cell.execution_count is None for cell in result.cells[1:])


def test_student_stub_raises_not_implemented():
    namespace = {}
    exec(student.strip_solutions(SOLUTION_CELL), namespace)  # noqa: S102 - our own test code
    with pytest.raises(NotImplementedError):
        namespace["gram"](SimpleNamespace(shape=(2, 3)))


def test_solution_at_top_level_and_at_end_without_newline():
    assert student.strip_solutions("a = 1\n### BEGIN SOLUTION\nb = 2\n### END SOLUTION") == \
        "a = 1\n# YOUR CODE HERE\nraise NotImplementedError()"


@pytest.mark.parametrize("source", ["### BEGIN SOLUTION\nx = 1\n", "x = 1\n### END SOLUTION\n",
                                    "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n"])
def test_unmatched_markers_are_errors(source):
    with pytest.raises(ValueError, match="SOLUTION"):
        student.strip_solutions(source)


def test_committed_notebooks_become_clean_student_versions(tmp_path):
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not notebooks:
        pytest.skip("no notebooks yet")
    assert student.main(["--out", str(tmp_path)]) == 0
    for path in notebooks:
        original = nbformat.read(path, as_version=4)
        copy = nbformat.read(tmp_path / path.name, as_version=4)
        assert len(copy.cells) == len(original.cells)
        for before, after in zip(original.cells, copy.cells):
            if after.cell_type != "code":
                assert after.source == before.source
                continue
            assert "### BEGIN SOLUTION" not in after.source and "### END SOLUTION" not in after.source
            assert after.outputs == []
            if "### BEGIN SOLUTION" in before.source:
                assert "raise NotImplementedError()" in after.source


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
