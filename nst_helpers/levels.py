"""Coarse-to-fine (notebook 05): run the loop at half size (or less) first, then refine at full size.

A step at half size costs a quarter of a full-size step, and the coarse result is a better start than the
photo: ``plan_levels`` says which sizes and how many steps, ``level_inputs`` gives the images of one level.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import controls, images

__all__ = ["plan_levels", "level_inputs", "COARSE_SIZE", "COARSE_SHARE"]

COARSE_SIZE = 256      # coarse-to-fine starts at or below this long side
COARSE_SHARE = 0.7     # share of the steps spent at the coarser levels (BENCHMARKS.md, R2: 0.5 cost more
                       # for no visible gain)


def plan_levels(opts) -> list[tuple[int, int]]:
    """The resolutions of a run and the steps spent at each: [(long side, steps), ...] (notebook 05).

    Coarse-to-fine halves the size (at least once) until it is at most COARSE_SIZE and spends COARSE_SHARE of the steps
    (``opts.coarse_share``, by default COARSE_SHARE) at the coarser levels, where a step costs a quarter (or less) of a full-size step.
    """
    # Auto: on for large outputs, but not when starting from a given image (say, a result to refine).
    auto = opts.size > COARSE_SIZE and opts.init != "image"
    enabled = opts.coarse_to_fine if opts.coarse_to_fine is not None else auto
    sizes = [opts.size]
    if enabled:
        sizes.insert(0, max(16, opts.size // 2))
        while sizes[0] > COARSE_SIZE:
            sizes.insert(0, sizes[0] // 2)
    if len(sizes) == 1 or opts.steps < 2 * len(sizes):
        return [(opts.size, opts.steps)]
    coarse_steps = round(opts.steps * opts.coarse_share)
    per_level = [coarse_steps // (len(sizes) - 1)] * (len(sizes) - 1)
    return [(size, steps) for size, steps in zip(sizes, per_level)] + [(opts.size, opts.steps - sum(per_level))]


def level_inputs(opts, content_full: torch.Tensor, styles_full: list, size: int) -> tuple:
    """The content and style images for one resolution level, with the colour control applied (notebook 05).

    The style images shrink with the result, so the strokes keep their size relative to the picture.
    """
    content_img = images.load_image(content_full, size=size).to(content_full.device)
    style_imgs = [images.load_image(style, size=max(16, round(max(style.shape[-2:]) * size / opts.size)))
                  .to(content_full.device) for style in styles_full]
    if opts.preserve_color == "histogram":
        style_imgs = [controls.match_histogram(style, content_img) for style in style_imgs]
    elif opts.preserve_color == "luminance":
        style_imgs = [controls.to_luminance(style, like=content_img) for style in style_imgs]
        content_img = controls.to_luminance(content_img)
    return content_img, style_imgs


def resize_to(image: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``image`` resized (bicubic) to the height and width of ``like``: a level's result carried to the next.

    Introduced in notebook 05.
    """
    return F.interpolate(image.detach(), size=like.shape[-2:], mode="bicubic", align_corners=False)
