"""Wall time of the command lines: nst-stylize vs pastiche, same images, same size, same number of steps.

    python benchmarks/bench_cli.py            # 256 px long side, 100 steps, 3 interleaved repeats
    python benchmarks/bench_cli.py --quick    # a smoke run: 64 px, 5 steps, 1 repeat

Both programs take the long side: ``nst-stylize --size S`` and ``pastiche --size S`` ("maximum dimension for
content and pastiche images"), so chelsea (451x300) becomes 256x170 in both.  The wall time includes start-up
(imports, weights, image loading).  Target: nst-stylize / pastiche <= 0.5.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import example_files, header, median, table, timed  # noqa: E402


def program(name: str) -> str:
    """The console script next to this Python, else on PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"{name} is not installed: pip install {'pastiche' if name == 'pastiche' else '-e .'}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 64 px, 5 steps, 1 repeat")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    size, steps, repeats = (64, 5, 1) if args.quick else (args.size, args.steps, max(1, args.repeats))
    header(f"Command-line wall time at {size} px, {steps} steps")
    folder = tempfile.mkdtemp(prefix="nst-bench-cli-")
    content, style = example_files(folder)
    out = os.path.join(folder, "out.png")
    commands = {
        "nst-stylize": [program("nst-stylize"), content, style, "-o", out, "--size", str(size),
                        "--steps", str(steps), "--quiet"],
        "pastiche": [program("pastiche"), "--content", content, "--styles", style, "--output", out,
                     "--size", str(size), "--num-steps", str(steps), "--no-verbose"],
    }
    for name, command in commands.items():
        print(f"{name}: {' '.join(Path(arg).name if os.sep in arg else arg for arg in command)}")
    print()
    seconds: dict = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            seconds[name].append(timed(lambda: subprocess.run(command, check=True, capture_output=True)))
    reference = median(seconds["pastiche"])
    rows = [[name, f"{median(values):.1f}", f"{min(values):.1f}-{max(values):.1f}",
             f"{median(values) / reference:.2f}"] for name, values in seconds.items()]
    print(table(["program", "wall s (median)", "range", "ratio vs pastiche"], rows))
    print(f"\n{repeats} repeats, interleaved. Target: nst-stylize / pastiche <= 0.5.")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
