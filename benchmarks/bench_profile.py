"""Where the time of one loss evaluation goes, in NCHW and in channels_last (fp32 unless told otherwise).

    python benchmarks/bench_profile.py                # both parts below, 512 px, chelsea + starry_night
    python benchmarks/bench_profile.py --part profile # only the profile of L-BFGS steps of stylize's objective
    python benchmarks/bench_profile.py --part vgg     # only VGG-19 forward + backward to relu5_1 at 512 x 512
    python benchmarks/bench_profile.py --quick        # a smoke run at 64 px
    python benchmarks/bench_profile.py --part profile --precision bf16   # the VGG under bf16 autocast
    python benchmarks/bench_profile.py --part profile --precision bf16 --gram-backward autograd   # as before round 3

profile: the objective of ``stylize`` (``Objective``, single scale) driven by its own loop (``transfer.optimise``,
L-BFGS) for a few evaluations under ``torch.profiler`` after one warm-up evaluation.  Every operator is put in the
row of the innermost function of the package that called it (``losses.gram_matrix``, ``losses.range_penalty``,
...); copies and casts (``to``, ``contiguous``, a ``reshape`` that copies, ...) in a row of their own; a backward
operator in the row of the forward operator that made it.  "L-BFGS's own work" is what ``LBFGS.step`` does outside
the loss.  Python time between operators is not in any row: the last row is the rest of the profiled wall time.
vgg: the network alone, min of 3 after a warm-up, on 1 thread (wall and CPU time) and on 2 threads (wall).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, table  # noqa: E402
from bench_gram import gram_backward  # noqa: E402

from nst_helpers import VGGFeatures, transfer  # noqa: E402
from nst_helpers.inputs import prepare_inputs  # noqa: E402
from nst_helpers.levels import level_inputs  # noqa: E402
from nst_helpers.objective import Objective, use_memory_format  # noqa: E402
from nst_helpers.settings import Settings  # noqa: E402

LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")
COPIES = {"aten::to", "aten::_to_copy", "aten::contiguous", "aten::clone", "aten::copy_", "aten::reshape"}
# (where in the call stack, row): the innermost match names the row of an operator.
FRAMES = [("objective.py", "pad_to_multiple", "padding to a multiple of 16"),
          ("losses.py", "range_penalty", "range penalty (instead of a clamp)"),
          ("losses.py", "gram_matrix", "Gram matrices"),
          ("losses.py", "forward", "Gram matrices"),          # _GramProduct, the Gram matrix's own autograd node
          ("controls.py", "guided_gram", "Gram matrices"),
          ("losses.py", "tv_loss", "TV loss"),
          ("losses.py", "", "content and style losses"),
          ("vgg.py", "preprocess", "VGG preprocessing"),
          ("objective.py", "_number", "reading the loss values"),
          ("vgg.py", "", "VGG: ReLU and pooling"),
          ("objective.py", "", "objective: other"),
          ("transfer.py", "", "loop bookkeeping (best image, history)"),
          ("lbfgs.py", "", "L-BFGS's own work")]


def row_of(event, python_frames: list[str]) -> str:
    if event.name in ("aten::conv2d", "aten::convolution"):
        return "convolutions"
    for frame in python_frames:                         # innermost first
        for file, function, row in FRAMES:
            if file in frame and frame.endswith(function):
                if event.name in COPIES and row != "padding to a multiple of 16":
                    return "casts and copies"
                return row
    return "casts and copies" if event.name in COPIES else "other"


def is_op(event) -> bool:
    return event.name.startswith(("aten::", "autograd::"))


def breakdown(events) -> tuple[dict, dict]:
    """{row: (forward us, backward us)}, summed over top-level operators, and the profiled wall time in us."""
    forward_row, rows = {}, defaultdict(lambda: [0.0, 0.0])
    top = []
    for event in events:
        parent, frames = event.cpu_parent, []
        while parent is not None and not is_op(parent):
            frames.append(parent.name)
            parent = parent.cpu_parent
        if is_op(event) and parent is None:
            top.append((event, frames))
    for event, frames in top:
        if not event.name.startswith("autograd::"):
            row = row_of(event, frames)
            forward_row[event.sequence_nr] = row
            rows[row][0] += event.cpu_time_total
    for event, _ in top:
        if event.name.startswith("autograd::"):
            row = "gradient into the image" if "AccumulateGrad" in event.name else \
                "Gram matrices" if "_GramProduct" in event.name else forward_row.get(event.sequence_nr, "other")
            rows[row][1] += event.cpu_time_total
    return rows


def profile_evaluations(opts: Settings, content: str, style: str, channels_last: bool,
                        evaluations: int, bf16: bool = False) -> tuple[dict, float, float]:
    """(rows in ms per evaluation, profiled seconds per evaluation, (wall, CPU) seconds per evaluation unprofiled).

    On one thread the CPU time of this thread is all the work (the backward pass of CPU tensors runs on it too),
    and other programs' load does not count in it; the profiler's times are wall times."""
    extractor, content, styles, _ = prepare_inputs(opts, content, style)
    content_img, style_imgs = level_inputs(opts, content, styles, opts.size)
    objective = Objective(opts, extractor, content_img, style_imgs, bf16=bf16, channels_last=channels_last)

    def run(steps: int) -> tuple[float, float]:
        report = transfer._Report(steps, False, False, None)
        wall, cpu = time.perf_counter(), time.thread_time()
        transfer.optimise(objective, content_img, steps, report)
        return (time.perf_counter() - wall) / steps, (time.thread_time() - cpu) / steps

    run(1)                                                  # warm-up: kernels, first allocation
    plain = run(evaluations)
    with profile(activities=[ProfilerActivity.CPU], with_stack=True) as prof:
        profiled = run(evaluations)[0]
    rows = {row: (fwd / 1e3 / evaluations, bwd / 1e3 / evaluations) for row, (fwd, bwd) in
            breakdown(prof.events()).items()}
    return rows, profiled, plain


def lbfgs_full_history_ms(shape: tuple, steps: int = 60, last: int = 10) -> float:
    """ms per step that ``LBFGS.step`` spends outside the loss once its history is full (50 pairs), measured on an
    ill-conditioned quadratic of the image's shape (a cheap loss: the optimiser's work is then easy to see)."""
    generator = torch.Generator().manual_seed(0)
    scales = 10 ** (6 * torch.rand(shape, generator=generator) - 3)
    x = torch.rand(shape, generator=generator).requires_grad_(True)
    optimizer = transfer._make_optimizer(Settings(), x, steps)
    in_loss, marks = [0.0], []

    def closure() -> torch.Tensor:
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = (scales * x.pow(2)).sum()
        loss.backward()
        in_loss[0] += time.perf_counter() - started
        marks.append((time.perf_counter(), in_loss[0]))
        return loss

    optimizer.step(closure)                                 # max_iter = steps: one evaluation per step
    (end, end_loss), (start, start_loss) = marks[-1], marks[-1 - last]
    return ((end - start) - (end_loss - start_loss)) / last * 1e3


def vgg_seconds(side: int, channels_last: bool, threads: int, repeats: int = 3) -> tuple[float, float]:
    """(min wall seconds, min CPU seconds of this thread) of VGG-19 forward + backward to relu5_1."""
    torch.set_num_threads(threads)
    extractor = use_memory_format(VGGFeatures(LAYERS, device="cpu"), channels_last)
    image = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    layout = torch.channels_last if channels_last else torch.contiguous_format
    walls, cpus = [], []
    for _ in range(repeats + 1):                            # the first is a warm-up
        x = image.clone().contiguous(memory_format=layout).requires_grad_(True)
        wall, cpu = time.perf_counter(), time.thread_time()
        feats = extractor(x)
        sum(feats[name].pow(2).mean() for name in LAYERS).backward()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.thread_time() - cpu)
    return min(walls[1:]), min(cpus[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("profile", "vgg", "both"), default="both")
    parser.add_argument("--content", default="chelsea")
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--evaluations", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="for --part vgg")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="for --part profile: the VGG in fp32 or under bf16 autocast (losses stay fp32)")
    parser.add_argument("--gram-backward", choices=("one product", "autograd"), default="one product",
                        help="for --part profile: the library's Gram backward pass, or autograd's (before round three)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 64 px, 1 evaluation, 1 thread")
    args = parser.parse_args()
    size, evaluations = (64, 1) if args.quick else (512, args.evaluations)
    torch.set_num_threads(1)
    header(f"Where the time of one evaluation goes ({args.content} + {args.style}, {size} px, {args.precision}, "
           f"Gram backward: {args.gram_backward})")
    if args.part in ("profile", "both"):
        opts = Settings(size=size, steps=evaluations, precision="fp32", coarse_to_fine=False, device="cpu")
        with gram_backward(args.gram_backward):
            results = {layout: profile_evaluations(opts, args.content, args.style, layout == "channels_last",
                                                   evaluations, bf16=args.precision == "bf16")
                       for layout in ("nchw", "channels_last")}
        names = sorted({row for rows, _, _ in results.values() for row in rows},
                       key=lambda row: -sum(results["nchw"][0].get(row, (0, 0))))
        cells = []
        for row in names:
            parts = [results[layout][0].get(row, (0, 0)) for layout in results]
            if max(map(sum, parts)) >= 0.05:
                cells.append([row] + [f"{forward:.1f} + {backward:.1f}" for forward, backward in parts])
        cells.append(["not in an operator (Python, profiler)"] +
                     [f"{profiled * 1e3 - sum(map(sum, rows.values())):.1f}"
                      for rows, profiled, _ in results.values()])
        cells.append(["**one evaluation: wall profiled / wall not profiled / CPU time not profiled**"] +
                     [f"**{profiled * 1e3:.0f} / {wall * 1e3:.0f} / {cpu * 1e3:.0f}**"
                      for _, profiled, (wall, cpu) in results.values()])
        shape = prepare_inputs(opts, args.content, args.style)[1].shape
        full = lbfgs_full_history_ms(tuple(shape))
        print(f"ms per evaluation, forward + backward, mean of {evaluations} L-BFGS evaluations, 1 thread\n")
        print(table(["where (ms, forward + backward)", "NCHW", "channels_last"], cells))
        print(f"\nL-BFGS's own work once its history is full (50 pairs), image {tuple(shape)}: "
              f"{full:.1f} ms per step\n")
    if args.part in ("vgg", "both"):
        side = 64 if args.quick else 512
        rows = []
        for threads in ([1] if args.quick else args.threads):
            for layout in ("nchw", "channels_last"):
                wall, cpu = vgg_seconds(side, layout == "channels_last", threads)
                rows.append([threads, layout, f"{wall:.2f}", f"{cpu:.2f}" if threads == 1 else "-"])
                print(f"{threads} thread(s), {layout}: {wall:.2f} s, load {os.getloadavg()[0]:.2f}", flush=True)
        print(f"\nVGG-19 forward + backward to relu5_1 at {side} x {side}, fp32, min of 3 after a warm-up\n")
        print(table(["threads", "layout", "wall s", "CPU s (1 thread)"], rows))


if __name__ == "__main__":
    main()
