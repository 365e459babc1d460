"""Seconds for one VGG-19 forward + backward to relu5_1 (all Gatys style layers and relu4_2 requested).

    python benchmarks/bench_vgg.py            # 256x192 and 512x384 (4:3), fp32 / bf16, channels_last off / on
    python benchmarks/bench_vgg.py --quick    # a smoke run at a tiny size

The backward pass goes to the pixels only (the VGG is frozen), as in style transfer.  Configurations are
interleaved and repeated; the table shows the median after one warm-up call each.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, median, table, timed  # noqa: E402

from nst_helpers import VGGFeatures  # noqa: E402

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")


def make_step(extractor: VGGFeatures, image: torch.Tensor, bf16: bool, channels_last: bool):
    """A function doing one forward + backward pass of ``image`` through ``extractor``."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def step() -> None:
        x = image.detach().clone().contiguous(memory_format=fmt).requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            feats = extractor(x)
        total = sum(feats[name].float().pow(2).mean() for name in LAYERS)
        total.backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 64x48 px, 1 repeat")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sizes = [(48, 64)] if args.quick else [(192, 256), (384, 512)]
    repeats = 1 if args.quick else max(3, args.repeats)
    header("VGG-19 forward + backward to relu5_1 (seconds per pass, median)")

    plain = VGGFeatures(LAYERS, device="cpu")
    last = VGGFeatures(LAYERS, device="cpu").to(memory_format=torch.channels_last)
    configs = [(precision, cl) for precision in ("fp32", "bf16") for cl in (False, True)]
    rows = []
    for height, width in sizes:
        image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
        steps = {cfg: make_step(last if cfg[1] else plain, image, cfg[0] == "bf16", cfg[1]) for cfg in configs}
        for step in steps.values():          # warm-up
            step()
        times: dict = {cfg: [] for cfg in configs}
        for _ in range(repeats):             # interleaved
            for cfg, step in steps.items():
                times[cfg].append(timed(step))
        base = median(times[("fp32", False)])
        for cfg in configs:
            seconds = median(times[cfg])
            rows.append([f"{width}x{height}", cfg[0], "on" if cfg[1] else "off", f"{seconds:.3f}",
                         f"{min(times[cfg]):.3f}", f"{max(times[cfg]):.3f}", f"{base / seconds:.2f}x"])
    print(table(["size (WxH)", "precision", "channels_last", "median s", "min s", "max s", "speed vs fp32"],
                rows))
    print(f"\n{repeats} repeats after 1 warm-up, configurations interleaved.")


if __name__ == "__main__":
    main()
