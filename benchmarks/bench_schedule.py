"""Coarse-to-fine schedules at 512 px: seconds and the fp32 loss of each, in one process.

    python benchmarks/bench_schedule.py                              # 120:0.5, 100:0.5, 150:0.6, 200:0.7
    python benchmarks/bench_schedule.py --variants 200:0.5,200:0.7   # STEPS:COARSE_SHARE, comma-separated
    python benchmarks/bench_schedule.py --quick                      # a smoke run: 64 px, 8 steps

For each photo/style pair (coffee + waves, astronaut + mosaic: the pairs of bench_peer.py) and each variant it runs
``stylize`` at the given size with ``steps`` loss evaluations, ````coarse_share`` of them at the coarser levels (the rest
at full size), and scores the result with our fp32 loss at that size (``evaluate_loss``, default weights), the
yardstick of bench_peer.py.  Times are in-process (the network is loaded once, before the first run), so they leave
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

from nst_helpers import evaluate_loss, examples, stylize, to_pil  # noqa: E402

VARIANTS = "120:0.5,100:0.5,150:0.6,200:0.7"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default=VARIANTS, help="STEPS:COARSE_SHARE pairs, comma-separated")
    parser.add_argument("--pairs", default=",".join(PAIRS), help="content:style example names, comma-separated")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--quick", action="store_true", help="smoke run: 64 px, 8 steps, one pair")
    parser.add_argument("--out", default=None, help="folder for the pictures (default: a temporary folder)")
    args = parser.parse_args()
    variants = [(int(steps), float(share)) for steps, share in (v.split(":") for v in args.variants.split(","))]
    pairs = [pair.split(":") for pair in args.pairs.split(",")]
    size = args.size
    if args.quick:
        size, variants, pairs = 64, [(8, 0.5)], pairs[:1]
    header(f"Coarse-to-fine schedules at {size} px")
    out = args.out or tempfile.mkdtemp(prefix="nst-bench-schedule-")
    os.makedirs(out, exist_ok=True)
    stylize("chelsea", "swirls", size=32, steps=1, progress=False, preview=False)   # load the network once
    rows = []
    for photo, painting in pairs:
        content, style = examples.load(photo), examples.load(painting)
        for steps, share in variants:
            started = time.perf_counter()
            result = stylize(content, style, size=size, steps=steps, seed=0, coarse_share=share, progress=False,
                             preview=False)
            seconds = time.perf_counter() - started
            loss = evaluate_loss(result.image, content, style)["total"]
            path = os.path.join(out, f"{photo}-{painting}-{steps}steps-share{share}.png")
            to_pil(result.image).save(path)
            print(f"{photo}+{painting}, {steps} steps, share {share}: {seconds:.1f} s, loss {loss:.4f}, "
                  f"levels {result.levels}; {path}", flush=True)
            rows.append([f"{photo} + {painting}", str(steps), f"{share:g}", str(result.levels),
                         f"{seconds:.1f}", f"{loss:.4f}"])
    print()
    print(table(["pair", "steps", "coarse share", "levels (size, steps)", "s (in-process)", f"fp32 loss at {size} px"],
                rows))


if __name__ == "__main__":
    main()
