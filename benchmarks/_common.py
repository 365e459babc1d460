"""Shared helpers of the benchmark scripts: the header, example images as PNG files, timing, tables."""

from __future__ import annotations

import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def cpu_model() -> str:
    """The CPU's model name from lscpu (or platform.processor() where lscpu is missing)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in text.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown CPU"


def header(title: str) -> None:
    """Print the exact command, the machine and torch's version."""
    command = " ".join(shlex.quote(arg) for arg in [Path(sys.executable).name] + sys.argv)
    print(f"# {title}")
    print(f"command: {command}")
    print(f"machine: {os.cpu_count()} CPUs ({cpu_model()}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    print()


def example_files(folder: str | None = None) -> tuple[str, str]:
    """The examples chelsea (content) and swirls (style) saved as PNG files; returns their paths."""
    from nst_helpers import examples, images

    folder = folder or tempfile.mkdtemp(prefix="nst-bench-")
    paths = []
    for name in ("chelsea", "swirls"):
        path = os.path.join(folder, f"{name}.png")
        if not os.path.exists(path):
            images.save_image(examples.load(name), path)
        paths.append(path)
    return paths[0], paths[1]


def timed(fn) -> float:
    """Seconds one call of ``fn()`` takes."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def median(values) -> float:
    return statistics.median(values)


def table(headings: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    cells = [[str(cell) for cell in row] for row in rows]
    lines = ["| " + " | ".join(headings) + " |", "|" + "|".join("---" for _ in headings) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)
