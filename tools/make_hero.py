#!/usr/bin/env python
"""Make the README's opening figure: photo | painting | result, rendered by nst_helpers.

    python tools/make_hero.py                        # docs/hero.png, the result at 512 px (a few minutes on a CPU)
    python tools/make_hero.py --size 128 -o hero_test.png --steps 40   # a quick look at the layout

The result is `stylize(photo, painting)` with the package's defaults (seed 0).  The three panels are shown at the
same height, labelled underneath, and the figure is saved as a 256-colour PNG; it must stay under --max-kb.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def label(title: str, credit: str) -> str:
    return f"{title}\n{credit}"


def compose(panels: list, labels: list[str], height: int):
    """One PIL image: the panels side by side at `height` pixels, each with its two-line label below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from nst_helpers import to_pil

    pictures = [to_pil(panel) for panel in panels]
    pictures = [p.resize((round(p.width * height / p.height), height), Image.LANCZOS) for p in pictures]
    gap, caption, dpi = 12, 44, 100
    width = sum(p.width for p in pictures) + gap * (len(pictures) + 1)
    fig = plt.figure(figsize=(width / dpi, (height + caption + gap) / dpi), dpi=dpi)
    left = gap
    for picture, text in zip(pictures, labels):
        ax = fig.add_axes([left / width, (caption) / (height + caption + gap), picture.width / width,
                           height / (height + caption + gap)])
        ax.imshow(picture)
        ax.axis("off")
        fig.text((left + picture.width / 2) / width, (caption - 4) / (height + caption + gap), text,
                 ha="center", va="top", fontsize=10, linespacing=1.3)
        left += picture.width + gap
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    plt.close(fig)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def save_small_png(image, path: Path, max_kb: int) -> int:
    """Save as a palette PNG with as many colours (256 down to 64) as fit in max_kb; returns the size in bytes."""
    for colours in (256, 192, 128, 96, 64):
        buffer = io.BytesIO()
        image.quantize(colors=colours, dither=1).save(buffer, format="PNG", optimize=True)
        if buffer.tell() <= max_kb * 1024:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(buffer.getvalue())
            return buffer.tell()
    raise SystemExit(f"make_hero: even with 64 colours the figure is {buffer.tell() // 1024} kB, more than "
                     f"{max_kb} kB: use a smaller --height")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", default="chelsea", help="a shipped photo's name (default: chelsea)")
    parser.add_argument("--painting", default="starry_night", help="a shipped painting's name (default: starry_night)")
    parser.add_argument("--size", type=int, default=512, help="long side of the result in pixels (default: 512)")
    parser.add_argument("--steps", type=int, default=None, help="loss evaluations (default: stylize's)")
    parser.add_argument("--height", type=int, default=300, help="height of each panel in the figure (default: 300)")
    parser.add_argument("--max-kb", type=int, default=300, help="largest allowed file size (default: 300)")
    parser.add_argument("-o", "--output", default=str(ROOT / "docs" / "hero.png"))
    args = parser.parse_args(argv)

    from nst_helpers import examples, stylize

    for name, kind in [(args.photo, "photo"), (args.painting, "painting")]:
        if name not in examples.names(kind=kind, online=False):
            parser.error(f"{name!r} is not a shipped {kind}; choose one of "
                         f"{', '.join(examples.names(kind=kind, online=False))}")
    settings = {"size": args.size, "seed": 0}
    if args.steps is not None:
        settings["steps"] = args.steps
    result = stylize(args.photo, args.painting, progress=False, preview=False, **settings)
    photo_credit, painting_credit = examples.credit(args.photo), examples.credit(args.painting)
    labels = [label("photo", f"{photo_credit['title']}"),
              label("painting", f"{painting_credit['title']}, {painting_credit['author']}"),
              label("result", f"stylize(\"{args.photo}\", \"{args.painting}\"), {max(result.image.shape[-2:])} px")]
    image = compose([examples.load(args.photo, size=args.size), examples.load(args.painting, size=args.size),
                     result.image], labels, args.height)
    size = save_small_png(image, Path(args.output), args.max_kb)
    print(f"wrote {args.output}: {image.width} x {image.height} px, {size / 1024:.0f} kB "
          f"(stylize: {result.seconds:.0f} s, {result.precision})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
