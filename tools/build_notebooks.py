#!/usr/bin/env python
"""Execute the course notebooks top to bottom, store their outputs, and check that they are clean.

    python tools/build_notebooks.py                 # all notebooks, full quality (how committed outputs are made)
    python tools/build_notebooks.py 01 02 --quick   # some of them, small and fast (NST_QUICK=1)
    python tools/build_notebooks.py --check-only    # only verify the stored outputs
    python tools/build_notebooks.py --quick --table # ... and end with a Markdown table of the times (docs/teaching.md)

Figures are stored as 256-colour PNGs where that is smaller (``compact_images``).
Checks: no error outputs, nothing on stderr (tqdm progress bars excepted), no warning text, no SVG,
no absolute paths of a machine, at most 2 MB per notebook.  Exits with status 1 on any problem.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
MAX_BYTES = 2 * 1024 * 1024
CELL_TIMEOUT_S = 600
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

# An absolute path of some machine: /home/..., /Users/..., /tmp/..., C:\Users\... (not inside a URL).
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])(?:/(?:home|Users|tmp|root|work|private|var/folders|mnt|opt)/"
                           r"|[A-Za-z]:\\(?:Users|Windows)\\)")
WARNING_TEXT = re.compile(r"\b[A-Z]\w*Warning\b[:(]|\bwarnings\.warn\b")
TQDM_BAR = re.compile(r"\d+%\|.*\|")


def output_texts(output) -> list[str]:
    """The text of one output (streams, plain text, HTML, LaTeX, errors), images left out."""
    if output.get("output_type") == "stream":
        return [output.get("text", "")]
    if output.get("output_type") == "error":
        return [output.get("ename", ""), output.get("evalue", "")] + list(output.get("traceback", []))
    data = output.get("data", {})
    return [_join(value) for key, value in data.items() if not key.startswith("image/") and isinstance(value, (str, list))]


def _join(value) -> str:
    return "".join(value) if isinstance(value, list) else value


def check_notebook(nb, size_bytes: int | None = None) -> list[str]:
    """Problems found in an executed notebook (an empty list when it is clean)."""
    problems = []
    if size_bytes is not None and size_bytes > MAX_BYTES:
        problems.append(f"file is {size_bytes / 2**20:.2f} MB, more than {MAX_BYTES / 2**20:.0f} MB: "
                        "use smaller figures or fewer images")
    for index, cell in enumerate(nb.cells, start=1):
        where = f"cell {index}"
        if ABSOLUTE_PATH.search(cell.source):
            problems.append(f"{where}: absolute path in the source")
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "error":
                problems.append(f"{where}: error output {output.get('ename')}: {output.get('evalue')}")
            if kind == "stream" and output.get("name") == "stderr" and not TQDM_BAR.search(output.get("text", "")):
                first = output.get("text", "").strip().splitlines()[:1]
                problems.append(f"{where}: writes to stderr: {first[0][:100] if first else ''!r}")
            if "image/svg+xml" in output.get("data", {}):
                problems.append(f"{where}: SVG output (use PNG figures)")
            for text in output_texts(output):
                if kind != "error" and WARNING_TEXT.search(text):
                    problems.append(f"{where}: warning in the output: {WARNING_TEXT.search(text).group(0)!r}")
                if ABSOLUTE_PATH.search(text):
                    match = ABSOLUTE_PATH.search(text)
                    problems.append(f"{where}: absolute path in the output: {text[match.start():match.start() + 60]!r}")
    return problems


def compact_images(nb) -> int:
    """Store every opaque PNG figure with a palette of 256 colours (median cut, Floyd-Steinberg dithering), where
    that is smaller; returns the bytes saved.

    Stylised pictures are noisy at the pixel level and hardly compress as full-colour PNGs (about 3 bytes a
    pixel); with a palette they take a third of that and look the same at the size they are shown.  Figures
    with transparency are left as they are.
    """
    import base64
    import io

    from PIL import Image

    saved = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" not in data:
                continue
            raw = base64.b64decode(data["image/png"])
            image = Image.open(io.BytesIO(raw))
            if image.mode == "P" or ("A" in image.getbands() and image.getchannel("A").getextrema()[0] < 255):
                continue
            rgb = image.convert("RGB")
            palette = rgb.quantize(256, method=Image.Quantize.MEDIANCUT)
            buffer = io.BytesIO()
            rgb.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG).save(buffer, "PNG", optimize=True)
            if len(buffer.getvalue()) < len(raw):
                saved += len(raw) - len(buffer.getvalue())
                data["image/png"] = base64.b64encode(buffer.getvalue()).decode("ascii")
    return saved


def clean_metadata(nb) -> None:
    """Drop execution timings and editor state, and the pictures saved in widget state; name the python3 kernel.

    An Image widget's saved state holds its picture a second time (05's panel: over 200 kB), although every
    notebook shows the same result as a figure below its panel; without a kernel the widget shows empty instead.
    """
    for cell in nb.cells:
        for key in ("execution", "collapsed", "scrolled", "ExecuteTime"):
            cell.metadata.pop(key, None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata.pop("papermill", None)
    widgets = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    for model in widgets.get("state", {}).values():
        if model.get("model_name") == "ImageModel":
            model["buffers"] = [buffer for buffer in model.get("buffers", []) if buffer.get("path") != ["value"]]
            model.get("state", {}).pop("value", None)


class BuildError(Exception):
    """The notebook could not be run to the end (a cell timed out, the kernel died)."""


def execute(path: Path, quick: bool, cell_timeout: float = CELL_TIMEOUT_S) -> None:
    """Run the notebook in its folder with a python3 kernel and write it back with its outputs."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    env_before = os.environ.get("NST_QUICK")
    if quick:
        os.environ["NST_QUICK"] = "1"
    else:
        os.environ.pop("NST_QUICK", None)
    try:
        client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        client.execute()
    except CellExecutionError:
        pass  # the error output stays in the notebook; check_notebook reports it
    except (CellTimeoutError, DeadKernelError) as err:
        raise BuildError(f"{type(err).__name__}: {str(err).splitlines()[0]}") from None
    finally:
        if env_before is None:
            os.environ.pop("NST_QUICK", None)
        else:
            os.environ["NST_QUICK"] = env_before
        clean_metadata(nb)
        compact_images(nb)
        nbformat.write(nb, path)


def find_notebooks(names: list[str]) -> list[Path]:
    """Notebooks by file name or prefix ("01", "01_content_loss", "01_content_loss.ipynb"); all by default."""
    available = sorted(NOTEBOOKS.glob("*.ipynb"))
    if not names:
        return available
    chosen = []
    for name in names:
        matches = [p for p in available if p.name == name or p.stem == name or p.name.startswith(name)]
        if not matches:
            raise SystemExit(f"no notebook matches {name!r} in notebooks/: choose from "
                             f"{', '.join(p.name for p in available)}")
        chosen += [p for p in matches if p not in chosen]
    return chosen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebooks to build (default: all in notebooks/)")
    parser.add_argument("--quick", action="store_true", help="set NST_QUICK=1: small sizes, few steps")
    parser.add_argument("--check-only", action="store_true", help="do not execute, only check stored outputs")
    parser.add_argument("--table", action="store_true", help="end with a Markdown table of the running times")
    parser.add_argument("--cell-timeout", type=float, default=CELL_TIMEOUT_S, metavar="S",
                        help=f"seconds a cell may run before the build fails (default {CELL_TIMEOUT_S}; "
                             "more on a slow or busy machine)")
    args = parser.parse_args(argv)
    failed, rows = False, []
    for path in find_notebooks(args.names):
        started = time.perf_counter()
        problems = []
        if not args.check_only:
            try:
                execute(path, args.quick, args.cell_timeout)
            except BuildError as err:
                problems.append(str(err))
        seconds = time.perf_counter() - started
        size = path.stat().st_size
        problems += check_notebook(nbformat.read(path, as_version=4), size)
        status = "ok" if not problems else f"{len(problems)} problem(s)"
        print(f"{path.name:45s} {seconds:7.1f} s {size / 2**20:6.2f} MB  {status}", flush=True)
        rows.append(f"| `{path.stem}` | {seconds:.0f} | {size / 2**20:.2f} |")
        for problem in problems:
            print(f"    {problem}")
        failed = failed or bool(problems)
    if args.table and not args.check_only:
        mode = "quick mode (NST_QUICK=1)" if args.quick else "default mode"
        print(f"\n| notebook | run time, {mode} (s) | file (MB) |\n| --- | --- | --- |")
        print("\n".join(rows))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
