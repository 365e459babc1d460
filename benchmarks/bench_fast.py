"""Fast style transfer (notebook 07): one pass of the shipped network against the optimisation.

    python benchmarks/bench_fast.py --timing              # seconds per picture at 256, 512, 1024 px (2 threads)
    python benchmarks/bench_fast.py --memory              # peak memory of one picture per size (a child each)
    python benchmarks/bench_fast.py --quality             # the course's loss on held-out photos, vs stylize
    python benchmarks/bench_fast.py --quality --pairs chelsea:starry_night coffee:great_wave --compare 50
    python benchmarks/bench_fast.py --quality --network my.pt --style my_painting.jpg --cache DIR

Timing: the shipped network is loaded once, one warm-up pass, then the median of --repeats passes of
``stylize_fast`` on a tensor already at the size (long side), fp32, ``--threads`` threads; wall time and
the process's CPU time (all threads; on a busy machine the wall time mostly measures the other programs).
Quality: for each held-out photo and style, the fp32 loss at 512 px (``transfer.evaluate_loss`` with
stylize's default weights) of the network's picture, of ``stylize`` with its defaults (200 steps) and with
50 steps; the optimisation's pictures are kept in --cache (they do not depend on the network) and a
side-by-side PNG (photo | network | 50 steps | defaults) per pair is written there.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, median, table  # noqa: E402

from nst_helpers import examples  # noqa: E402
from nst_helpers.fast import HELD_OUT, load_network, styles_with_network, stylize_fast  # noqa: E402
from nst_helpers.images import load_image, save_image  # noqa: E402
from nst_helpers import evaluate_loss, stylize  # noqa: E402

SIZES = (256, 512, 1024)


def timing(network, style, repeats: int) -> list[list]:
    net = load_network(network or style)
    rows = []
    for size in SIZES:
        photo = examples.load("chelsea", size=size)
        stylize_fast(photo, style if net.n_styles > 1 else None, network=net, size=None)  # warm-up
        times, cpu = [], []
        for _ in range(repeats):
            started, started_cpu = time.perf_counter(), time.process_time()
            stylize_fast(photo, style if net.n_styles > 1 else None, network=net, size=None)
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
        rows.append([f"{photo.shape[-1]}x{photo.shape[-2]}", f"{median(times) * 1000:.0f} ms",
                     f"{min(times) * 1000:.0f} ms", f"{median(cpu) * 1000:.0f} ms"])
    return rows


def _peak_rss_mb() -> float:
    """The process's peak resident memory so far (VmHWM; ru_maxrss where /proc is missing), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak_rss() -> None:
    """Start the peak over from the current resident memory (Linux: clear_refs 5), where the system allows it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def one_size(network, style, size: int) -> None:
    """In a child process: one picture at ``size``; prints the peak resident memory in MB before and during it."""
    net = load_network(network or style)
    photo = examples.load("chelsea", size=size)
    _reset_peak_rss()      # the peak of the imports and loading would hide the pass's own
    before = _peak_rss_mb()
    stylize_fast(photo, style if net.n_styles > 1 else None, network=net, size=None)
    after = _peak_rss_mb()
    print(f"{before:.0f} {after:.0f}")


def memory(network, style) -> list[list]:
    rows = []
    for size in SIZES:
        command = [sys.executable, __file__, "--one-size", str(size), "--style", style]
        if network:
            command += ["--network", network]
        before, after = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
        rows.append([size, f"{before} MB", f"{after} MB", f"{float(after) - float(before):.0f} MB"])
    return rows


def _optimised(photo: str, style: str, steps: int | None, cache: Path) -> torch.Tensor:
    path = cache / f"{photo}_{style}_{steps or 'default'}.png"
    if not path.is_file():
        settings = {} if steps is None else {"steps": steps}
        with contextlib.redirect_stdout(io.StringIO()):
            result = stylize(photo, style, size=512, progress=False, seed=0, **settings)
        save_image(result.image, path)
    return load_image(path)


def quality(network, pairs, cache: Path, compare: list[str]) -> list[list]:
    cache.mkdir(parents=True, exist_ok=True)
    rows = []
    for photo, style in pairs:
        fast = stylize_fast(photo, style if network is None else None, network=network, size=512)
        pictures = {"network": fast}
        for steps in compare:
            label = "defaults (200 steps)" if steps == "default" else f"{steps} steps"
            pictures[label] = _optimised(photo, style, None if steps == "default" else int(steps), cache)
        losses = {name: evaluate_loss(image, photo, style, precision="fp32") for name, image in pictures.items()}
        original = examples.load(photo, size=512)
        height = min(p.shape[-2] for p in [original, *pictures.values()])
        save_image(torch.cat([p[..., :height, :] for p in [original, *pictures.values()]], -1),
                   cache / f"side_by_side_{photo}_{style}.png")
        rows.append([photo, style] + [f"{losses[n]['total']:.3f} (c {losses[n]['content']:.2f}, "
                                      f"s {losses[n]['style']:.2f})" for n in pictures])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timing", action="store_true")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--network", default=None, help="a network file instead of the shipped one")
    parser.add_argument("--style", default="starry_night", help="style for timing and memory")
    parser.add_argument("--styles", nargs="+", default=None, help="styles for --quality (default: all shipped)")
    parser.add_argument("--photos", nargs="+", default=list(HELD_OUT))
    parser.add_argument("--pairs", nargs="+", default=None, help="photo:style pairs instead of photos x styles")
    parser.add_argument("--compare", nargs="+", default=["50", "default"],
                        help="stylize runs to compare with: step counts and/or 'default'")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "nst-bench-fast"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--one-size", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.one_size:
        one_size(args.network, args.style, args.one_size)
        return
    header("Fast style transfer: one pass of a trained network")
    if args.timing:
        print(table(["picture", "median", "fastest", "CPU time (all threads), median"], timing(args.network, args.style, args.repeats)), "\n")
    if args.memory:
        print(table(["long side", "resident before the pass", "peak during the pass", "added"], memory(args.network, args.style)),
              "\n")
    if args.quality:
        styles = args.styles or (styles_with_network() if args.network is None else [args.style])
        pairs = [p.split(":") for p in args.pairs] if args.pairs else \
            [(photo, style) for photo in args.photos for style in styles]
        headings = ["photo", "style", "network (1 pass)"] + \
            [f"stylize, {'defaults' if c == 'default' else c + ' steps'}" for c in args.compare]
        print(table(headings, quality(args.network, pairs, Path(args.cache), args.compare)))


if __name__ == "__main__":
    main()
