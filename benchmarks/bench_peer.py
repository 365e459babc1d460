"""Time to quality against the peer: pastiche's command line vs ours with its defaults, side by side.

    python benchmarks/bench_peer.py                       # coffee+waves and astronaut+mosaic at 512 px
    python benchmarks/bench_peer.py --quick               # a smoke run: 64 px, 5 pastiche steps
    python benchmarks/bench_peer.py --programs pastiche   # only one program (e.g. to learn its score)

For each photo/style pair (example images saved as PNG files at their own size) it runs, one after the other in the
same process (the order alternates from pair to pair):

    pastiche --content C --styles S --output P.png --size 512 --num-steps 300 --no-verbose
    nst-stylize C S -o O.png --size 512 --quiet          # our defaults, nothing else

and times each command from start to exit (start-up, loading and saving included).  Both outputs are then scored with
one yardstick: our fp32 loss at the output's size (``evaluate_loss`` with the default weights).  The table gives the
wall times, their ratio, the two scores, and the pictures (content | pastiche | ours) go into one small PNG per pair
for the eye.  The load average before each command is printed: on a shared machine the figures are noisy.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import header, table  # noqa: E402

from nst_helpers import evaluate_loss, examples, images  # noqa: E402

PAIRS = ("coffee:waves", "astronaut:mosaic")


def program(name: str) -> list[str]:
    """The console script next to this Python, else ``python -m`` the package."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return [str(local)]
    return [sys.executable, "-m", "pastiche" if name == "pastiche" else "nst_helpers"]


def run(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return seconds


def side_by_side(paths: list[str], out: str, height: int = 200) -> None:
    """The pictures in a row, each ``height`` px tall, as one PNG."""
    tiles = [Image.open(path).convert("RGB") for path in paths]
    tiles = [tile.resize((round(tile.width * height / tile.height), height), Image.LANCZOS) for tile in tiles]
    strip = Image.new("RGB", (sum(tile.width for tile in tiles) + 4 * (len(tiles) - 1), height), "white")
    left = 0
    for tile in tiles:
        strip.paste(tile, (left, 0))
        left += tile.width + 4
    strip.save(out, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 64 px, 5 pastiche steps, one pair")
    parser.add_argument("--pairs", default=",".join(PAIRS), help="content:style example names, comma-separated")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=300, help="pastiche's --num-steps")
    parser.add_argument("--programs", default="pastiche,nst-stylize")
    parser.add_argument("--ours-args", default="", help="extra options for nst-stylize (default: none)")
    parser.add_argument("--out", default=None, help="folder for the pictures (default: a temporary folder)")
    args = parser.parse_args()
    pairs = [pair.split(":") for pair in args.pairs.split(",")]
    size, steps = (64, 5) if args.quick else (args.size, args.steps)
    if args.quick:
        pairs = pairs[:1]
    header(f"Time to quality vs pastiche at {size} px")
    folder = tempfile.mkdtemp(prefix="nst-bench-peer-")
    out_folder = args.out or folder
    os.makedirs(out_folder, exist_ok=True)
    programs = args.programs.split(",")
    rows = []
    for index, (photo, painting) in enumerate(pairs):
        content, style = (os.path.join(folder, f"{name}.png") for name in (photo, painting))
        for name, path in ((photo, content), (painting, style)):
            images.save_image(examples.load(name), path)
        outputs = {name: os.path.join(out_folder, f"{photo}-{painting}-{name}.png") for name in programs}
        commands = {
            "pastiche": program("pastiche") + ["--content", content, "--styles", style, "--output",
                                               outputs.get("pastiche", ""), "--size", str(size),
                                               "--num-steps", str(steps), "--no-verbose"],
            "nst-stylize": program("nst-stylize") + [content, style, "-o", outputs.get("nst-stylize", ""),
                                                     "--size", str(size), "--quiet"] + args.ours_args.split(),
        }
        order = programs if index % 2 == 0 else programs[::-1]
        seconds, scores = {}, {}
        for name in order:
            print(f"{photo}+{painting}: {name} (load average {os.getloadavg()[0]:.2f}): "
                  f"{' '.join(Path(arg).name if os.sep in arg else arg for arg in commands[name])}", flush=True)
            seconds[name] = run(commands[name])
            result = images.load_image(outputs[name])
            scores[name] = evaluate_loss(result, content, style)["total"]
            print(f"  {seconds[name]:.1f} s, fp32 loss at {max(result.shape[-2:])} px {scores[name]:.4f}", flush=True)
        reference = seconds.get("pastiche")
        for name in programs:
            ratio = f"{seconds[name] / reference:.2f}" if reference else "-"
            quality = f"{scores[name] / scores['pastiche']:.2f}" if "pastiche" in scores else "-"
            rows.append([f"{photo} + {painting}", name, f"{seconds[name]:.1f}", ratio, f"{scores[name]:.4f}", quality])
        strip = os.path.join(out_folder, f"peer_{photo}_{painting}.png")
        side_by_side([content] + [outputs[name] for name in programs], strip)
        print(f"  pictures ({', '.join(['content'] + programs)}): {strip}", flush=True)
    print()
    print(table(["pair", "program", "wall s", "time vs pastiche", f"fp32 loss (ours, {size} px)", "loss vs pastiche"],
                rows))
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
