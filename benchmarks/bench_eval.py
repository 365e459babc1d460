"""Seconds per loss evaluation (forward + backward through VGG-19): nst_helpers' stylize vs pastiche.

    python benchmarks/bench_eval.py            # 256 and 512 px (long side; chelsea is 3:2), L-BFGS
    python benchmarks/bench_eval.py --quick    # a smoke run at 64 px
    python benchmarks/bench_eval.py --profile  # also: the top operators of one evaluation at 512 px

Ours: ``stylize(..., steps=N, coarse_to_fine=False)`` with the default precision (bf16 autocast where the CPU
supports it) and with ``precision="fp32"``; timed at N1 and N2 steps, seconds per evaluation = (t2 - t1) / (N2 - N1),
so loading images, building targets and start-up cancel out.  pastiche: its Python API (``PasticheArtist``,
L-BFGS, one evaluation per ``draw()``), timed over N2 - N1 draws after one warm-up draw.  Same weights, same layers
(relu4_2 / block4_relu2 for content, relu{1..5}_1 / block{1..5}_relu1 for style), same image files.
Everything is interleaved and repeated; the table shows medians.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import example_files, header, median, table, timed  # noqa: E402

from nst_helpers import stylize  # noqa: E402


def ours(content: str, style: str, size: int, steps: int, precision: str) -> None:
    result = stylize(content, style, size=size, steps=steps, precision=precision, coarse_to_fine=False,
                     device="cpu", progress=False, preview=False)
    assert len(result.history) == steps, (len(result.history), steps)


def pastiche_artist(content: str, style: str, size: int):
    from pastiche.pastiche import PasticheArtist

    artist = PasticheArtist(content, [style], size=size, device="cpu")
    artist.draw()                          # warm-up
    return artist


def profile(content: str, style: str, size: int) -> None:
    """Print the operators that take the most time in one evaluation of our loss (default precision, fp32)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from nst_helpers.hardware import choose_precision
    from nst_helpers.inputs import load_any
    from nst_helpers.objective import Objective
    from nst_helpers.settings import GATYS_STYLE_LAYERS, Settings
    from nst_helpers.vgg import VGGFeatures

    opts = Settings(size=size)
    extractor = VGGFeatures(opts.content_layers + opts.style_layers, device="cpu")
    content_img, style_img = load_any(content, size=size), load_any(style, size=size)
    for bf16 in sorted({choose_precision("auto", torch.device("cpu"))[0], False}, reverse=True):
        objective = Objective(opts, extractor, content_img, style_img, bf16=bf16)
        x = content_img.clone().requires_grad_(True)
        for _ in range(2):                 # warm-up, then the profiled evaluation
            with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
                total, _ = objective(x)
                total.backward()
        print(f"\nTop operators of one evaluation at {size} px, {'bf16' if bf16 else 'fp32'} "
              f"(style layers {', '.join(GATYS_STYLE_LAYERS)}):")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 64 px, 2 and 4 steps, 1 repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="also profile one evaluation at the largest size")
    args = parser.parse_args()
    sizes = [64] if args.quick else [256, 512]
    n1, n2 = (2, 4) if args.quick else (5, 15)
    repeats = 1 if args.quick else max(3, args.repeats)
    header("Seconds per loss evaluation: nst_helpers vs pastiche (L-BFGS, medians)")
    content, style = example_files()

    variants = ["ours default", "ours fp32", "pastiche"]
    rows = []
    for size in sizes:
        ours(content, style, size, 2, "auto")      # warm-up (and the extractor cache)
        ours(content, style, size, 2, "fp32")
        artist = pastiche_artist(content, style, size)
        per_eval: dict = {name: [] for name in variants}
        for _ in range(repeats):
            for name, precision in (("ours default", "auto"), ("ours fp32", "fp32")):
                t1 = timed(lambda: ours(content, style, size, n1, precision))
                t2 = timed(lambda: ours(content, style, size, n2, precision))
                per_eval[name].append((t2 - t1) / (n2 - n1))
            t = timed(lambda: [artist.draw() for _ in range(n2 - n1)])
            per_eval["pastiche"].append(t / (n2 - n1))
        reference = median(per_eval["pastiche"])
        height, width = artist.content_size
        for name in variants:
            seconds = median(per_eval[name])
            rows.append([f"{size} ({width}x{height})", name, f"{seconds:.3f}",
                         f"{min(per_eval[name]):.3f}-{max(per_eval[name]):.3f}", f"{seconds / reference:.2f}"])
    print(table(["size px (WxH)", "variant", "s / evaluation (median)", "range", "ratio vs pastiche"], rows))
    print(f"\nours: (t({n2} steps) - t({n1} steps)) / {n2 - n1}; pastiche: {n2 - n1} draw() calls; "
          f"{repeats} repeats interleaved. Target: ours default / pastiche <= 0.5.")
    if args.profile:
        profile(content, style, sizes[-1])


if __name__ == "__main__":
    main()
