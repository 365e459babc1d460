"""What the stopping rule saves and what it gives up, read off full-length runs.

    python benchmarks/bench_stopping.py                  # coffee+waves and chelsea+swirls, 256 px, 300 steps
    python benchmarks/bench_stopping.py --quick          # a smoke run: 64 px, 30 steps

Each pair runs once with every step taken (``stop_tolerance=0``, single scale, the default precision).  The rule
only looks at the best loss so far, so where it would have stopped a run, and the loss it would have returned, can be
read off that one history for every tolerance and window: no extra runs.  The table gives, per tolerance and
window, the step at which the rule stops, the share of the steps saved, and how far the best loss at that step is
above the best loss after all the steps.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, table  # noqa: E402

from nst_helpers import stylize  # noqa: E402
from nst_helpers.transfer import levelled_off  # noqa: E402

PAIRS = (("coffee", "waves"), ("chelsea", "swirls"))
RULES = [(tolerance, window) for window in (10, 20) for tolerance in (0.001, 0.002, 0.005, 0.01, 0.02)]


def stop_step(bests: list[float], tolerance: float, window: int) -> int:
    """How many steps the loop's stopping rule (``transfer.levelled_off``) lets a run take, given its best losses."""
    for taken in range(window + 1, len(bests) + 1):
        if levelled_off(bests[:taken], tolerance, window):
            return taken
    return len(bests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    size, steps = (64, 30) if args.quick else (args.size, args.steps)
    header(f"Stopping rule read off {steps}-step runs at {size} px")
    rows = []
    for photo, painting in PAIRS[:1] if args.quick else PAIRS:
        result = stylize(photo, painting, size=size, steps=steps, stop_tolerance=0.0, coarse_to_fine=False,
                         progress=False, preview=False)
        print(f"{photo}+{painting}: {result.seconds:.0f} s, {result.precision}", flush=True)
        bests, best = [], float("inf")
        for losses in result.history:
            best = min(best, losses["total"])
            bests.append(best)
        pair_rows = []
        for tolerance, window in RULES:
            taken = stop_step(bests, tolerance, window)
            pair_rows.append([f"{photo}+{painting}", f"{tolerance:.1%}", window, taken, f"{1 - taken / steps:.0%}",
                              f"{bests[taken - 1] / bests[-1] - 1:+.1%}"])
        print(table(["pair", "tolerance", "window", "stops after", "steps saved", "best loss vs all steps"],
                    pair_rows), flush=True)
        rows += pair_rows
    print()
    print(table(["pair", "tolerance", "window", "stops after", "steps saved", "best loss vs all steps"], rows))


if __name__ == "__main__":
    main()
