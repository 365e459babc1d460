"""Coarse-to-fine schedules at 512 px: seconds and the fp32 loss of each, in one process.

    python benchmarks/bench_schedule.py                  # the defaults against a third level, fewer full-size steps
    python benchmarks/bench_schedule.py --variants 200:0.5,200:0.7:128,200:0.7:256:0.002
    python benchmarks/bench_schedule.py --quick          # a smoke run: 64 px, 8 steps

A variant is STEPS:COARSE_SHARE[:COARSE_SIZE[:STOP_TOLERANCE]]: ``steps`` loss evaluations in all,
``coarse_share`` of them at the coarser levels (the rest at full size); the levels halve the size until it is at
most COARSE_SIZE (256, the library's: 256 -> 512; 128: 128 -> 256 -> 512); STOP_TOLERANCE turns on the stopping
rule at every level (a level ends when its best loss fell by less than that fraction over 20 steps).

For each photo/style pair (coffee + waves and astronaut + mosaic, the pairs of bench_peer.py, and chelsea + starry_night)
and each variant it runs ``stylize`` at the given size and scores the result with our fp32 loss at that size
(``evaluate_loss``, default weights), the yardstick of bench_peer.py.  Times are in-process (the network is loaded once, before the first run), so they leave
out the command line's start-up of a few seconds.  The pictures are written to ``--out`` (default: a temporary folder).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, table  # noqa: E402
from bench_peer import PAIRS  # noqa: E402  (the same photo/style pairs as the comparison with pastiche)

from nst_helpers import evaluate_loss, examples, levels, stylize, to_pil  # noqa: E402

VARIANTS = "200:0.7,200:0.7:128,200:0.85,200:0.85:128,200:0.7:256:0.002"
THIRD_PAIR = "chelsea:starry_night"
DEFAULT_COARSE = levels.COARSE_SIZE


def parse_variant(text: str) -> tuple[int, float, int, float]:
    """STEPS:COARSE_SHARE[:COARSE_SIZE[:STOP_TOLERANCE]] -> (steps, share, coarse size, tolerance)."""
    parts = text.split(":")
    if not 2 <= len(parts) <= 4:
        raise SystemExit(f"bench_schedule: variant {text!r} must be STEPS:COARSE_SHARE[:COARSE_SIZE[:STOP_TOLERANCE]]")
    steps, share = int(parts[0]), float(parts[1])
    coarse = int(parts[2]) if len(parts) > 2 else levels.COARSE_SIZE
    tolerance = float(parts[3]) if len(parts) > 3 else 0.0
    return steps, share, coarse, tolerance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default=VARIANTS,
                        help="STEPS:COARSE_SHARE[:COARSE_SIZE[:STOP_TOLERANCE]], comma-separated")
    parser.add_argument("--pairs", default=",".join(PAIRS + (THIRD_PAIR,)),
                        help="content:style example names, comma-separated")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--quick", action="store_true", help="smoke run: 64 px, 8 steps, one pair")
    parser.add_argument("--out", default=None, help="folder for the pictures (default: a temporary folder)")
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variants.split(",")]
    pairs = [pair.split(":") for pair in args.pairs.split(",")]
    size = args.size
    if args.quick:
        size, variants, pairs = 64, [(8, 0.5, 32, 0.0), (8, 0.5, 16, 0.01)], pairs[:1]
    header(f"Coarse-to-fine schedules at {size} px")
    out = args.out or tempfile.mkdtemp(prefix="nst-bench-schedule-")
    os.makedirs(out, exist_ok=True)
    stylize("chelsea", "swirls", size=32, steps=1, progress=False, preview=False)   # load the network once
    rows = []
    for photo, painting in pairs:
        content, style = examples.load(photo), examples.load(painting)
        for steps, share, coarse, tolerance in variants:
            levels.COARSE_SIZE = coarse           # read by plan_levels at every run
            try:
                started = time.perf_counter()
                result = stylize(content, style, size=size, steps=steps, seed=0, coarse_share=share,
                                 progress=False, preview=False, stop_tolerance=tolerance)
                seconds = time.perf_counter() - started
            finally:
                levels.COARSE_SIZE = DEFAULT_COARSE
            loss = evaluate_loss(result.image, content, style)["total"]
            path = os.path.join(out, f"{photo}-{painting}-{steps}steps-share{share}-c{coarse}-t{tolerance}.png")
            to_pil(result.image).save(path)
            print(f"{photo}+{painting}, {steps} steps, share {share}, coarse {coarse}, stop {tolerance}: "
                  f"{seconds:.1f} s, loss {loss:.4f}, levels {result.levels}; {path}", flush=True)
            rows.append([f"{photo} + {painting}", str(steps), f"{share:g}", str(coarse), f"{tolerance:g}",
                         str(result.levels), str(len(result.history)), f"{seconds:.1f}", f"{loss:.4f}"])
    print()
    print(table(["pair", "steps", "coarse share", "coarse size", "stop rule", "levels planned (size, steps)",
                 "evaluations run", "s (in-process)", f"fp32 loss at {size} px"], rows))


if __name__ == "__main__":
    main()
