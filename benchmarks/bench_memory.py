"""Peak memory (RSS) of a short stylize run at growing sizes, each in a fresh Python process.

    python benchmarks/bench_memory.py            # 512, 768, 1024, 1536, 2048, 3072 px; stops above 8 GB
    python benchmarks/bench_memory.py --quick    # a smoke run at 64 and 128 px

Each child runs ``stylize(chelsea, swirls, size=S, steps=N)`` with the default settings (precision "auto",
coarse-to-fine on above 256 px; a run this short stays at full size, where the peak is) and reports
``resource.getrusage(RUSAGE_SELF).ru_maxrss``.  Targets: <= 2 GB at 512 px; the largest size under 8 GB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import example_files, header, table  # noqa: E402

CHILD = """
import json, resource, sys, time
from nst_helpers import stylize
content, style, size, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
started = time.perf_counter()
result = stylize(content, style, size=size, steps=steps, device="cpu", progress=False, preview=False)
rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss          # kilobytes on Linux
print(json.dumps({"rss_gb": rss_kb / 2**20, "seconds": time.perf_counter() - started,
                  "shape": list(result.image.shape[-2:]), "levels": result.levels}))
"""

LIMIT_GB = 8.0


def available_gb() -> float:
    """MemAvailable from /proc/meminfo (inf where it cannot be read)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 64 and 128 px")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    sizes = [64, 128] if args.quick else [512, 768, 1024, 1536, 2048, 3072]
    header(f"Peak RSS of stylize (steps={args.steps}, default settings), one fresh process per size")
    content, style = example_files()
    rows, largest = [], None
    for size in sizes:
        if available_gb() < LIMIT_GB + 2:
            rows.append([size, "-", "-", f"skipped: only {available_gb():.1f} GB available", "-"])
            break
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CHILD, content, style, str(size), str(args.steps)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            rows.append([size, "-", "-", f"failed (exit {done.returncode}): "
                         f"{(done.stderr.strip().splitlines() or ['?'])[-1]}", "-"])
            break
        report = json.loads(done.stdout.strip().splitlines()[-1])
        height, width = report["shape"]
        over = report["rss_gb"] > LIMIT_GB
        rows.append([size, f"{width}x{height}", f"{report['rss_gb']:.2f}", "over 8 GB" if over else "ok",
                     f"{time.perf_counter() - started:.0f}"])
        if over:
            break
        largest = size
    print(table(["size px", "WxH", "peak RSS GB", "vs 8 GB", "process s"], rows))
    print(f"\nLargest size under {LIMIT_GB:.0f} GB: {largest} px. Target: <= 2 GB at 512 px.")


if __name__ == "__main__":
    main()
