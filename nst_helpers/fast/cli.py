"""The fast commands (notebook 07): ``nst-stylize ... --fast`` and ``nst-train-fast PAINTING -o NET.pt``.

    nst-stylize photo.jpg starry_night -o out.png --fast          # a shipped network, one pass
    nst-stylize photo.jpg -o out.png --fast --network my_style.pt  # a network you trained
    nst-train-fast painting.jpg -o my_style.pt                      # train one (resumes if the file exists)

Exit codes as nst-stylize's: 0 saved, 1 error (one line on stderr), 2 usage error, 130 Ctrl-C (for the
training: the best network so far is saved once a step has finished).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from .. import _interrupt

__all__ = ["add_options", "requested", "stylize_main", "train_main", "build_train_parser"]

TRAIN_PROG = "nst-train-fast"
FAST_SIZE = 512  # nst-stylize --fast without --size: the size the shipped networks were trained for


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--fast`` and ``--network`` to nst-stylize's parser."""
    group = parser.add_argument_group("fast style transfer (one pass of a trained network; notebook 07)")
    group.add_argument("--fast", action="store_true",
                       help="paint with a trained network in one pass instead of optimising; STYLE must be a "
                            "style with a shipped network (several: blended by --style-blend); only --size "
                            "(default 512 with --fast, the size the shipped networks were trained for), "
                            "--device and --quiet apply")
    group.add_argument("--network", metavar="NET.pt", default=None,
                       help="with --fast: a network file written by nst-train-fast (STYLE may then be left out)")


def requested(parser: argparse.ArgumentParser, argv: list[str]) -> bool:
    """Whether ``argv`` asks for --fast (a bad command line is left to the ordinary parser's error)."""
    if any(a in ("-h", "--help") for a in argv):
        return False
    try:
        with contextlib.redirect_stderr(None):
            args, _ = parser.parse_known_args(argv)
    except SystemExit:
        return False
    return bool(getattr(args, "fast", False))


def stylize_main(parser: argparse.ArgumentParser, argv: list[str], prog: str = "nst-stylize") -> int:
    """``nst-stylize ... --fast``: returns the exit code."""
    from .. import images

    try:  # usage errors: one line, exit code 2
        args = parser.parse_args(argv)
        if args.content is None or args.output is None:
            parser.error("--fast needs CONTENT and -o/--output")
        if not args.style and args.network is None:
            from .shipped import styles_with_network

            parser.error(f"--fast needs a STYLE with a shipped network ({', '.join(styles_with_network())}) "
                         "or --network NET.pt")
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 2
    def work():
        from .shipped import stylize_fast

        size_given = any(a == "--size" or a.startswith("--size=") for a in argv)
        image = stylize_fast(args.content, args.style or None, network=args.network,
                             size=args.size if size_given else FAST_SIZE, blend=args.style_blend, device=args.device)
        return image, images.save_image(image, args.output)

    code, done = _guarded(prog, "interrupted; nothing was saved", work)
    if code is None and not args.quiet:
        image, saved = done
        print(f"saved {saved} ({image.shape[-1]}x{image.shape[-2]} px, one pass of a trained network)")
    return code or 0


def _guarded(prog: str, interrupted: str, work):
    """(exit code, work()) with Ctrl-C on: (130, None) after printing ``interrupted``, (1, None) after printing an
    error in one line, else (None, what work returned)."""
    try:
        _interrupt.raise_on_ctrl_c()
        return None, work()
    except KeyboardInterrupt:
        print(f"{prog}: {interrupted}", file=sys.stderr)
        return 130, None
    except Exception as err:
        print(f"{prog}: error: {' '.join(str(err).split()) or type(err).__name__}", file=sys.stderr)
        return 1, None
    finally:
        _interrupt.ignore_ctrl_c()


def build_train_parser() -> argparse.ArgumentParser:
    """nst-train-fast's parser; its defaults are those of ``TrainSettings``."""
    from ..cli import _Parser, _positive_int as _whole   # here: cli imports this module while it loads
    from .training import TrainSettings

    d = TrainSettings()
    parser = _Parser(prog=TRAIN_PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
                     description="Train a network that paints photos in the style of PAINTING in one pass "
                                 "(Johnson et al. 2016), on the photos that the install ships.",
                     epilog="Run it again with the same -o to resume; Ctrl-C saves the best network so far.\n"
                            "Then: nst-stylize photo.jpg -o out.png --fast --network NET.pt\n"
                            "exit codes: 0 saved; 1 error; 2 usage error; 130 interrupted by Ctrl-C (the best "
                            "network so far is saved once a step has finished)")
    parser.add_argument("painting", metavar="PAINTING", nargs="+",
                        help="the style image(s): files or example names; several give one network that "
                             "blends them")
    parser.add_argument("-o", "--output", metavar="NET.pt", required=True,
                        help="the network file (also the checkpoint: run again to resume)")
    parser.add_argument("--steps", type=_whole, default=d.steps, help=f"training steps in all (default {d.steps})")
    parser.add_argument("--batch", type=_whole, default=d.batch, help=f"crops per step (default {d.batch})")
    parser.add_argument("--crop", type=_whole, default=d.crop, help=f"crop side in px, a multiple of 16 "
                                                                    f"(default {d.crop})")
    parser.add_argument("--style-size", metavar="PX", type=_whole, default=d.style_size,
                        help=f"long side of the painting for the style targets: sets the stroke size "
                             f"(default {d.style_size})")
    parser.add_argument("--width", type=_whole, default=d.width, help=f"filters of the first layer ({d.width})")
    parser.add_argument("--blocks", type=_whole, default=d.blocks, help=f"residual blocks ({d.blocks})")
    for name in ("content_weight", "style_weight", "tv_weight", "learning_rate"):
        parser.add_argument("--" + name.replace("_", "-"), metavar="W", type=float, default=getattr(d, name),
                            help=f"default {getattr(d, name)}")
    parser.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    parser.add_argument("--restart", action="store_true", help="start again even if NET.pt holds a training")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return parser


def train_main(argv: list[str] | None = None) -> int:
    """``nst-train-fast``: returns the exit code."""
    parser = build_train_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)
    output = Path(args.output).expanduser()
    if output.is_dir() or output.suffix.lower() != ".pt":
        print(f"{TRAIN_PROG}: error: -o {args.output!r} must be a file name ending in .pt "
              f"(see {TRAIN_PROG} --help)", file=sys.stderr)
        return 2
    settings = {k: getattr(args, k) for k in ("steps", "batch", "crop", "style_size", "width", "blocks",
                                              "content_weight", "style_weight", "tv_weight", "learning_rate",
                                              "seed")}
    try:
        from .training import TrainSettings, train

        TrainSettings(**settings)  # bad values: a usage error before any work
    except ValueError as err:
        print(f"{TRAIN_PROG}: error: {err} (see {TRAIN_PROG} --help)", file=sys.stderr)
        return 2
    code, result = _guarded(TRAIN_PROG, "interrupted before training began; nothing new was saved",
                            lambda: train(args.painting, checkpoint=output, resume=not args.restart,
                                          progress=not args.quiet, **settings))
    if code is not None:
        return code
    steps = len(result.history)
    if result.interrupted:
        print(f"{TRAIN_PROG}: interrupted after {steps} steps; saved the best network so far to {output} "
              "(run the same command again to resume)", file=sys.stderr)
        return 130
    if not args.quiet:
        print(f"saved {output} ({steps} steps, {result.seconds:.0f} s this run; best mean loss "
              f"{result.best_loss:.4g})")
    return 0


if __name__ == "__main__":
    sys.exit(train_main())
