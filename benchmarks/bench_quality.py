"""Time to quality at 512 px: how soon each variant of stylize reaches the loss of a plain fp32 run.

    python benchmarks/bench_quality.py            # 512 px (chelsea, 3:2), reference: 300 fp32 L-BFGS steps
    python benchmarks/bench_quality.py --quick    # a smoke run at 128 px, 20 steps

Reference: ``stylize(size=512, steps=300, precision="fp32", coarse_to_fine=False)``; its final image is re-evaluated
with ``evaluate_loss`` (fp32 at 512 px): that value is the target.  Each variant then runs with the same number of
steps; at its final level (full size) every K steps the current image, clamped to [0, 1] like a result, is scored
with the same fp32 loss at 512 px (the clock is paused meanwhile) and the run stops once the score is <= the target.
Coarse levels are not scored: their loss is at another size.  The table gives the seconds from calling stylize
(images, targets and all levels included) until the target is reached, and the speed-up vs the reference.
The final images (reference | ours default) are saved side by side in a PNG.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import example_files, header, table  # noqa: E402

from nst_helpers import StopRun, stylize  # noqa: E402
from nst_helpers.images import to_pil  # noqa: E402
from nst_helpers.objective import evaluate_loss, loss_parts_at  # noqa: E402

VARIANTS = [("ours default (auto precision, coarse-to-fine)", {}),
            ("bf16 single-scale", {"precision": "bf16", "coarse_to_fine": False}),
            ("fp32 coarse-to-fine", {"precision": "fp32", "coarse_to_fine": True})]


class Scorer:
    """The fp32 loss at full size of an image, as ``evaluate_loss`` computes it (``loss_parts_at``: targets once)."""

    def __init__(self, content: str, style: str, size: int):
        self.parts = loss_parts_at(size, content, style, device="cpu")

    def __call__(self, image: torch.Tensor) -> float:
        return self.parts(image.clamp(0, 1))["total"]


def run(content, style, size, steps, settings, scorer=None, target=None, every=5):
    """One stylize run; returns (result, [(seconds, step, fp32 loss)], seconds to target or None, wall seconds)."""
    trace, paused = [], [0.0]
    reached: list = []
    started = time.perf_counter()

    def callback(step: int, image: torch.Tensor, losses: dict) -> None:
        now = time.perf_counter()
        if scorer is None:                 # the reference: its own loss is already fp32 at full size
            trace.append((now - started, step, losses["total"]))
            return
        if max(image.shape[-2:]) != size or (step % every and step != steps):
            return
        elapsed = now - started - paused[0]
        loss = scorer(image)
        trace.append((elapsed, step, loss))
        paused[0] += time.perf_counter() - now
        if loss <= target:
            reached.append(elapsed)
            raise StopRun("reached the target loss")   # stylize returns the best image so far

    with contextlib.redirect_stdout(io.StringIO()):   # "reached the target loss"
        result = stylize(content, style, size=size, steps=steps, device="cpu", progress=False, preview=False,
                         callback=callback, **settings)
    wall = time.perf_counter() - started - paused[0]
    return result, trace, (reached[0] if reached else None), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 128 px, 20 steps")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=300, help="steps of the reference and of each variant")
    parser.add_argument("--every", type=int, default=5, help="score the variants every K steps")
    parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "nst_bench_quality.png"))
    args = parser.parse_args()
    size, steps = (128, 20) if args.quick else (args.size, args.steps)
    header(f"Time to quality at {size} px (target: the fp32 loss of {steps} single-scale fp32 L-BFGS steps)")
    content, style = example_files()

    for precision in ("fp32", "bf16"):     # warm-up: weights, oneDNN kernels
        stylize(content, style, size=size, steps=2, precision=precision, coarse_to_fine=False, device="cpu",
                progress=False, preview=False)

    reference, ref_trace, _, ref_wall = run(content, style, size, steps,
                                            {"precision": "fp32", "coarse_to_fine": False})
    target = evaluate_loss(reference.image, content, style)["total"]
    scorer = Scorer(content, style, size)
    print(f"reference: {steps} steps in {ref_wall:.1f} s, final loss (evaluate_loss, fp32 at {size} px) "
          f"{target:.5g} (scorer gives {scorer(reference.image):.5g})")
    ref_time = next(seconds for seconds, _, loss in ref_trace if loss <= target) if \
        any(loss <= target for _, _, loss in ref_trace) else ref_wall
    rows = [["reference fp32 single-scale", f"{ref_time:.1f}", str(next((s for _, s, loss in ref_trace
                                                                          if loss <= target), steps)),
             f"{target:.5g}", "1.00x"]]
    images = {"reference": reference.image}
    for name, settings in VARIANTS:
        result, trace, seconds, wall = run(content, style, size, steps, settings, scorer, target, args.every)
        best = min((loss for _, _, loss in trace), default=float("nan"))
        images.setdefault("ours", result.image)
        if seconds is None:
            rows.append([name, f"not reached ({wall:.1f} s for {len(result.history)} steps)",
                         "-", f"{best:.5g} ({best / target:.3f}x target)", "-"])
        else:
            rows.append([name, f"{seconds:.1f}", str(trace[-1][1]), f"{best:.5g}", f"{ref_time / seconds:.2f}x"])
        print(f"{name}: levels {result.levels}; fp32 loss trace (s, step, loss): "
              + ", ".join(f"({t:.0f}, {s}, {loss:.4g})" for t, s, loss in trace))
    print()
    print(table(["variant", "s to reach target", "step", f"best fp32 loss at {size} px", "speed-up"], rows))
    print(f"\nTarget: speed-up >= 5x for ours default. Single runs (not repeated); variants scored every "
          f"{args.every} steps at their final level, scoring time excluded.")

    pictures = [to_pil(images[key]) for key in ("reference", "ours")]
    canvas = Image.new("RGB", (sum(p.width for p in pictures) + 8, max(p.height for p in pictures)), "white")
    canvas.paste(pictures[0], (0, 0))
    canvas.paste(pictures[1], (pictures[0].width + 8, 0))
    canvas.save(args.out)
    print(f"saved {args.out} (left: reference, right: ours default)")


if __name__ == "__main__":
    main()
