"""The course's doors to Colab and Binder: the repository's address (defined once, here) and what follows from it.

    python tools/doors.py --check            # every notebook has the Colab badge and the Colab set-up cell
    python tools/doors.py --write            # add or refresh them (the other cells are left as they are)

Each notebook starts with a markdown cell holding an "Open in Colab" badge for that notebook, followed by a code
cell that installs the course's package only when it runs on Colab (elsewhere the package is installed already).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPOSITORY = "https://github.com/nst-course/neural-style-transfer"   # the public GitHub repository of the course
BRANCH = "main"
ROOT = Path(__file__).resolve().parent.parent
COLAB_BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_BADGE_IMAGE = "https://mybinder.org/badge_logo.svg"


def _github_path() -> str:
    return REPOSITORY.removeprefix("https://github.com/").rstrip("/")


def colab_url(notebook: str) -> str:
    """Colab opens a notebook straight from a public GitHub repository by this address."""
    return f"https://colab.research.google.com/github/{_github_path()}/blob/{BRANCH}/notebooks/{Path(notebook).name}"


def binder_url(notebook: str | None = None) -> str:
    """mybinder.org builds the repository (binder/ folder) and opens JupyterLab, at ``notebook`` if given."""
    url = f"https://mybinder.org/v2/gh/{_github_path()}/{BRANCH}"
    return url + (f"?urlpath=lab/tree/notebooks/{Path(notebook).name}" if notebook else "?urlpath=lab")


def colab_badge(notebook: str) -> str:
    return f"[![Open In Colab]({COLAB_BADGE_IMAGE})]({colab_url(notebook)})"


def colab_cell() -> str:
    """The first code cell of every notebook: installs the package on Colab only."""
    return f'''# On Colab: install the course's package first (on your own computer or Binder it is installed already).
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "nst-helpers @ git+{REPOSITORY}"],
                   check=True)
    from google.colab import output

    output.enable_custom_widget_manager()  # the ipywidgets 8 panels'''


def problems(notebook_path: Path) -> list[str]:
    """What is missing from a notebook's doors (empty when it is all there)."""
    import nbformat

    notebook = nbformat.read(notebook_path, as_version=4)
    found = []
    markdown = next((c for c in notebook.cells if c.cell_type == "markdown"), None)
    if markdown is None or colab_badge(notebook_path.name) not in markdown.source:
        found.append(f"{notebook_path.name}: its first markdown cell has no Colab badge {colab_badge(notebook_path.name)}")
    code = next((c for c in notebook.cells if c.cell_type == "code"), None)
    if code is None or code.source != colab_cell():
        found.append(f"{notebook_path.name}: its first code cell is not the Colab set-up cell (tools/doors.py)")
    return found


def write(notebook_path: Path) -> None:
    """Add the badge (to the first markdown cell) and the set-up cell (before the first code cell)."""
    import nbformat

    notebook = nbformat.read(notebook_path, as_version=4)
    markdown = next(c for c in notebook.cells if c.cell_type == "markdown")
    badge = colab_badge(notebook_path.name)
    lines = [line for line in markdown.source.splitlines() if "colab-badge.svg" not in line]
    markdown.source = "\n".join([badge, ""] + lines) if badge not in markdown.source else markdown.source
    first_code = next(i for i, c in enumerate(notebook.cells) if c.cell_type == "code")
    if "google.colab" in notebook.cells[first_code].source:
        notebook.cells[first_code].source = colab_cell()
    else:
        notebook.cells.insert(first_code, nbformat.v4.new_code_cell(colab_cell()))
    nbformat.write(notebook, notebook_path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true", help="say what is missing; exit status 1 if anything is")
    action.add_argument("--write", action="store_true", help="add or refresh the badge and the set-up cell")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if args.write:
        for path in paths:
            write(path)
            print(f"{path.name}: Colab badge and set-up cell in place")
        return 0
    missing = [line for path in paths for line in problems(path)]
    print("\n".join(missing) if missing else f"{len(paths)} notebooks: Colab badge and set-up cell in place")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
