"""The Gram matrix's backward pass: autograd's two products against one product with g + g^T (losses._GramProduct).

    python benchmarks/bench_gram.py            # 512 px, chelsea + starry_night, 2 threads
    python benchmarks/bench_gram.py --threads 1
    python benchmarks/bench_gram.py --quick    # a smoke run at 64 px
    python benchmarks/bench_gram.py --part layers   # only the Gram matrix alone, at the shapes of the style layers
    python benchmarks/bench_gram.py --part training # only nst-train-fast's steps (notebook 07), default recipe

One loss evaluation (forward + backward) of ``stylize``'s objective at one size (``Objective``, the padded picture,
so the style loss uses the guided Gram matrix over the picture's region), in each precision and memory layout, once
with the Gram product differentiated by autograd (``torch.bmm(F, F^T)``: two products and a transposed sum) and once
with the library's own backward pass.  The two are interleaved; each figure is the min of ``--repeats`` after a
warm-up.  The last column: the largest difference between the two gradients of the image, relative to its
largest entry.  layers: the Gram matrix alone (fp32, forward + backward of its sum) at the shapes of the five style
layers for the padded picture, in both layouts.  training: seconds per step of ``fast.training.train`` with its
default recipe (fp32, NCHW), from the time of 4 and of 12 steps (min of 2 each, after a warm-up run), so that
loading and targets cancel out.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, table  # noqa: E402

from nst_helpers import losses  # noqa: E402
from nst_helpers.inputs import prepare_inputs  # noqa: E402
from nst_helpers.levels import level_inputs  # noqa: E402
from nst_helpers.objective import Objective  # noqa: E402
from nst_helpers.settings import Settings  # noqa: E402


class _AutogradGram:
    """What ``gram_matrix`` did before round three: bmm(F, F^T), differentiated by autograd."""

    @staticmethod
    def apply(features: torch.Tensor) -> torch.Tensor:
        n, c, h, w = features.shape
        flat = features.reshape(n, c, h * w)
        return torch.bmm(flat, flat.transpose(1, 2))


@contextlib.contextmanager
def gram_backward(kind: str):
    saved = losses._GramProduct
    if kind == "autograd":
        losses._GramProduct = _AutogradGram
    try:
        yield
    finally:
        losses._GramProduct = saved


def evaluation(objective: Objective, start: torch.Tensor) -> tuple[float, torch.Tensor]:
    x = start.clone().requires_grad_(True)
    began = time.perf_counter()
    total, _ = objective(x)
    total.backward()
    return time.perf_counter() - began, x.grad


def layer_rows(height: int, width: int, repeats: int) -> list[list[str]]:
    """Gram forward + backward alone at the shapes of relu1_1 ... relu5_1 for a (height, width) VGG input."""
    rows = []
    for depth, channels in enumerate((64, 128, 256, 512, 512)):
        shape = (1, channels, height >> depth, width >> depth)
        for layout in (torch.contiguous_format, torch.channels_last):
            features = torch.randn(shape, generator=torch.Generator().manual_seed(depth))
            features = features.contiguous(memory_format=layout).requires_grad_(True)
            times = {}
            for kind in ("autograd", "one product"):
                with gram_backward(kind):
                    forward, backward = [], []
                    for _ in range(repeats + 1):                       # the first is a warm-up
                        began = time.perf_counter()
                        gram = losses.gram_matrix(features)
                        middle = time.perf_counter()
                        gram.sum().backward()
                        forward.append(middle - began)
                        backward.append(time.perf_counter() - middle)
                        features.grad = None
                    times[kind] = (min(forward[1:]), min(backward[1:]))
            (old_f, old_b), (new_f, new_b) = times["autograd"], times["one product"]
            rows.append([f"relu{depth + 1}_1 {shape[1:]}", "nchw" if layout == torch.contiguous_format else
                         "channels_last", f"{old_f * 1e3:.1f} + {old_b * 1e3:.1f}", f"{new_f * 1e3:.1f} + {new_b * 1e3:.1f}",
                         f"{old_b / new_b:.1f}x"])
    return rows


def training_seconds_per_step(short: int = 4, long: int = 12, repeats: int = 2) -> dict[str, float]:
    """{kind: seconds per step}: after a warm-up run, the two kinds take turns; the min of each run length."""
    from nst_helpers.fast.training import train

    def run(kind: str, steps: int) -> float:
        with gram_backward(kind):
            began = time.perf_counter()
            train("starry_night", steps=steps, progress=False)
            return time.perf_counter() - began

    run("autograd", 1)                                      # first loads: weights, photos, kernels
    times = {(kind, steps): [] for kind in ("autograd", "one product") for steps in (short, long)}
    for _ in range(repeats):
        for kind, steps in times:
            times[kind, steps].append(run(kind, steps))
    return {kind: (min(times[kind, long]) - min(times[kind, short])) / (long - short)
            for kind in ("autograd", "one product")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--content", default="chelsea")
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--part", choices=("evaluation", "layers", "training", "all"), default="all")
    parser.add_argument("--quick", action="store_true", help="smoke run: 64 px, 1 repeat")
    args = parser.parse_args()
    size, repeats = (64, 1) if args.quick else (args.size, args.repeats)
    torch.set_num_threads(args.threads)
    header(f"The Gram matrix's backward pass ({args.content} + {args.style}, {size} px)")
    opts = Settings(size=size, steps=1, coarse_to_fine=False, device="cpu")
    extractor, content, styles, _ = prepare_inputs(opts, args.content, args.style)
    content_img, style_imgs = level_inputs(opts, content, styles, size)
    height, width = (-(-side // 16) * 16 for side in content_img.shape[-2:])     # as pad_to_multiple gives it
    if args.part == "training":
        per_step = training_seconds_per_step()
        old, new = per_step["autograd"], per_step["one product"]
        print(f"nst-train-fast's default recipe, seconds per step, {args.threads} thread(s): autograd's backward "
              f"{old:.2f} s, one product {new:.2f} s ({old / new:.2f}x)")
        return
    if args.part in ("layers", "all"):
        print(f"The Gram matrix alone, fp32, ms forward + backward, min of {repeats}, {args.threads} thread(s), "
              f"VGG input {height} x {width}\n")
        print(table(["layer (C, H, W)", "layout", "autograd (ms)", "one product (ms)", "backward speed-up"],
                    layer_rows(height, width, repeats)))
        print()
    if args.part == "layers":
        return
    rows = []
    for precision in ("fp32", "bf16"):
        for layout in ("nchw", "channels_last"):
            objective = Objective(opts, extractor, content_img, style_imgs, bf16=precision == "bf16",
                                  channels_last=layout == "channels_last")
            seconds, grads = {"autograd": [], "one product": []}, {}
            for kind in seconds:                                       # warm-up, and the gradients compared
                with gram_backward(kind):
                    grads[kind] = evaluation(objective, content_img)[1]
            for _ in range(repeats):
                for kind in seconds:
                    with gram_backward(kind):
                        seconds[kind].append(evaluation(objective, content_img)[0])
            old, new = min(seconds["autograd"]), min(seconds["one product"])
            difference = float((grads["autograd"] - grads["one product"]).abs().max() / grads["autograd"].abs().max())
            rows.append([precision, layout, f"{old * 1e3:.0f}", f"{new * 1e3:.0f}", f"{old / new:.2f}x",
                         f"{difference:.1e}"])
            print(f"{precision} {layout}: {old * 1e3:.0f} ms -> {new * 1e3:.0f} ms", flush=True)
    print(f"\nms per evaluation (forward + backward), min of {repeats}, {args.threads} thread(s)\n")
    print(table(["precision", "layout", "autograd's backward (ms)", "one product (ms)", "speed-up",
                 "gradient difference (relative)"], rows))


if __name__ == "__main__":
    main()
