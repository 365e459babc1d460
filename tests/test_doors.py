"""The doors to the course: the Colab badge and set-up cell (tools/doors.py), Binder's files, the README's links."""

import stat
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_tools import load_tool

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


doors = load_tool("doors")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_has_its_colab_badge_and_set_up_cell(path):
    assert doors.problems(path) == []


def test_write_adds_badge_and_cell_once_and_leaves_the_rest(tmp_path):
    path = tmp_path / "07_demo.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("# 07 · Demo"), new_code_cell("x = 1"),
                                       new_markdown_cell("text"), new_code_cell("print(x)")]), path)
    assert len(doors.problems(path)) == 2
    doors.write(path)
    doors.write(path)                                   # a second run changes nothing
    cells = nbformat.read(path, as_version=4).cells
    assert doors.problems(path) == []
    assert [c.cell_type for c in cells] == ["markdown", "code", "code", "markdown", "code"]
    assert cells[0].source.startswith("[![Open In Colab]") and cells[0].source.endswith("# 07 · Demo")
    assert cells[0].source.count("colab-badge.svg") == 1
    assert "/blob/main/notebooks/07_demo.ipynb" in cells[0].source
    assert [c.source for c in cells[2:]] == ["x = 1", "text", "print(x)"]


def test_check_names_what_is_missing(tmp_path, capsys):
    path = tmp_path / "08_demo.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell("# 08"), new_code_cell("x = 1")]), path)
    assert doors.main(["--check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "08_demo.ipynb: its first markdown cell has no Colab badge" in out and "set-up cell" in out


def test_the_colab_cell_does_nothing_outside_colab(monkeypatch):
    ran = []
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: ran.append(args))
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(doors.colab_cell(), "colab_cell", "exec"), {})
    assert ran == []


def test_the_colab_cell_installs_the_package_on_colab(monkeypatch):
    ran, enabled = [], []
    monkeypatch.setattr(subprocess, "run", lambda command, **kwargs: ran.append(command))
    colab = type(sys)("google.colab")
    colab.output = type(sys)("google.colab.output")
    colab.output.enable_custom_widget_manager = lambda: enabled.append(True)
    monkeypatch.setitem(sys.modules, "google", type(sys)("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.output", colab.output)
    exec(compile(doors.colab_cell(), "colab_cell", "exec"), {})
    assert ran == [[sys.executable, "-m", "pip", "install", "--quiet", f"nst-helpers @ git+{doors.REPOSITORY}"]]
    assert enabled == [True]


def test_readme_links_use_the_one_repository_address():
    readme = (ROOT / "README.md").read_text()
    assert doors.colab_url(NOTEBOOKS[0].name) in readme
    assert doors.binder_url() in readme
    assert "<this repository" not in readme and "git+<" not in readme


def test_binder_installs_the_package():
    requirements = (ROOT / "binder" / "requirements.txt").read_text()
    post_build = ROOT / "binder" / "postBuild"
    assert "torch" in requirements and "download.pytorch.org/whl/cpu" in requirements
    assert "pip install --no-cache-dir ." in post_build.read_text()
    assert post_build.stat().st_mode & stat.S_IXUSR, "binder/postBuild must be executable"
