"""Seconds for 300 loss evaluations at 512 px on a GPU, in fp32 and bf16, and a run with the defaults.

    python benchmarks/bench_gpu.py                 # on cuda (target: 300 evaluations at 512 px in <= 3 s)
    python benchmarks/bench_gpu.py --device cpu --quick    # a smoke run anywhere: 64 px, 5 steps

Each variant runs ``stylize(coffee, waves, size=512, steps=300)`` single-scale with every step taken (no stopping
rule) after one short warm-up run; the losses are read back after every step, so the clock includes the device's
work.  The final images are scored with ``evaluate_loss`` (fp32 at 512 px) on the same device.  Then the default
settings run once (coarse-to-fine and the stopping rule as they are), the way ``nst-stylize`` would.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, table  # noqa: E402

from nst_helpers import evaluate_loss, stylize  # noqa: E402
from nst_helpers.transfer import choose_precision  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="smoke run: 64 px, 5 steps")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA: this benchmark needs a CUDA GPU (or pass --device cpu)")
    size, steps = (64, 5) if args.quick else (512, 300)
    header(f"GPU benchmark on {args.device} at {size} px, {steps} steps")
    device = torch.device(args.device)
    if device.type == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(device)}")
    started = time.perf_counter()
    bf16, why = choose_precision("auto", device)
    print(f"precision probe: {why} (took {time.perf_counter() - started:.2f} s)\n")
    common = dict(device=args.device, progress=False, preview=False)
    stylize("coffee", "waves", size=size, steps=3, precision="fp32", **common)          # warm-up
    stylize("coffee", "waves", size=size, steps=3, precision="bf16", **common)
    rows = []
    variants = [("fp32 single-scale", dict(precision="fp32", steps=steps, coarse_to_fine=False, stop_tolerance=0.0)),
                ("bf16 single-scale", dict(precision="bf16", steps=steps, coarse_to_fine=False, stop_tolerance=0.0)),
                ("defaults (auto precision, levels, stopping rule)", {"steps": steps} if args.quick else {})]
    for name, settings in variants:
        started = time.perf_counter()
        result = stylize("coffee", "waves", size=size, **{**common, **settings})
        wall = time.perf_counter() - started
        loss = evaluate_loss(result.image, "coffee", "waves", device=args.device)["total"]
        evaluations = len(result.history)
        rows.append([name, evaluations, f"{wall:.2f}", f"{wall / evaluations * 1e3:.1f}", f"{loss:.4f}",
                     result.precision.split(":")[0].split(",")[0], result.stopped])
        print(f"{name}: {wall:.2f} s, {evaluations} evaluations, fp32 loss {loss:.4f}", flush=True)
    print()
    print(table(["variant", "evaluations", "wall s", "ms / evaluation", "fp32 loss at full size", "precision",
                 "stopped"], rows))
    if device.type == "cuda":
        print(f"\npeak GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
