"""One source of truth for dependencies: environment.yml must match pyproject.toml."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONDA_TO_PYPI = {"pytorch": "torch"}


def _name_and_spec(requirement: str) -> tuple[str, str]:
    match = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", requirement)
    return match.group(1).lower().replace("_", "-"), match.group(2).split("#")[0].strip().replace(" ", "")


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["dev"]
    return dict(_name_and_spec(r) for r in requirements)


def _environment() -> dict[str, str]:
    deps = {}
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("dependencies:", 1)[1].splitlines():
        item = re.match(r"\s*-\s+(.*)", line)
        if not item or item.group(1).startswith(("pip:", "-e")):
            continue
        name, spec = _name_and_spec(item.group(1))
        if name in ("python", "pip"):
            continue
        deps[CONDA_TO_PYPI.get(name, name)] = spec
    return deps


def test_environment_yml_matches_pyproject():
    assert _environment() == _pyproject()


def test_environment_installs_this_package_with_dev_extras():
    text = (ROOT / "environment.yml").read_text()
    assert '-e ".[dev]"' in text
    assert "conda-forge" in text


def test_teach_extra_is_part_of_dev():
    """The tests release and grade the course with nbgrader, so dev installs what a teacher installs."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    dev = dict(_name_and_spec(r) for r in extras["dev"])
    teach = dict(_name_and_spec(r) for r in extras["teach"])
    assert teach and all(dev.get(name) == spec for name, spec in teach.items())


def test_python_version_floor_is_the_same():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.10"
    assert "python>=3.10" in (ROOT / "environment.yml").read_text()
