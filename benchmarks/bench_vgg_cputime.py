"""VGG-19 forward + backward to relu5_1 in fp32 and bf16, timed in CPU seconds on one thread.

    python benchmarks/bench_vgg_cputime.py        # 256x192, 3 interleaved repeats, minimum

On a busy machine wall-clock times mostly measure the other programs; the CPU time of a single-threaded run counts
only this process's work, so the bf16 / fp32 ratio stays readable (the precision probe of ``transfer`` works the
same way).  Absolute seconds are for one core, not for the default two threads.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, table  # noqa: E402

from nst_helpers.settings import GATYS_STYLE_LAYERS  # noqa: E402
from nst_helpers.vgg import VGGFeatures  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    header("VGG-19 forward + backward to relu5_1, CPU seconds on one thread")
    net = VGGFeatures(("relu4_2",) + GATYS_STYLE_LAYERS, device="cpu")
    image = torch.rand(1, 3, 192, 256, generator=torch.Generator().manual_seed(0))
    seconds = {False: [], True: []}
    for _ in range(4):                      # the first round is a warm-up
        for bf16 in (False, True):
            x = image.clone().requires_grad_(True)
            started = time.thread_time()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                feats = net(x)
            sum(value.float().square().mean() for value in feats.values()).backward()
            seconds[bf16].append(time.thread_time() - started)
    fp32, bf16 = min(seconds[False][1:]), min(seconds[True][1:])
    print(table(["precision", "CPU s (min of 3)", "all repeats", "speed vs fp32"],
                [["fp32", f"{fp32:.3f}", " ".join(f"{s:.3f}" for s in seconds[False][1:]), "1.00x"],
                 ["bf16", f"{bf16:.3f}", " ".join(f"{s:.3f}" for s in seconds[True][1:]), f"{fp32 / bf16:.2f}x"]]))


if __name__ == "__main__":
    main()
