"""Controlling the result (Gatys et al. 2017, *Controlling Perceptual Factors in Neural Style Transfer*).

    to_luminance(style, like=content)       # colour: transfer on luminance only (then put the colours back)
    match_histogram(style, content)         # colour: recolour the style with the content's colour statistics
    colour_distance(a, b)                   # how far apart the colours of two images are
    load_masks([mask_a, mask_b], shape)     # regions: one mask per style (grey levels are weights), resized
    mask_at(mask, (h, w))                   # ... carried down to a layer's resolution
    blend_matrix(style_blend, styles, layers)   # several styles: one weight per style and layer

All images are (1, 3, H, W) RGB tensors in [0, 1]; masks are (1, 1, H, W) in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import images
from .losses import gram_matrix
from .setting_errors import SettingError

__all__ = ["rgb_to_yiq", "yiq_to_rgb", "to_luminance", "with_colours_of", "colour_stats", "match_histogram",
           "colour_distance", "load_masks", "mask_strength", "mask_at", "guided_gram", "blend_matrix", "COLOUR_METHODS"]

COLOUR_METHODS = ("luminance", "histogram")

# YIQ (NTSC): Y is the luminance, I and Q carry the colour.  The rows of RGB_TO_YIQ act on (R, G, B).
RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114],
                           [0.596, -0.274, -0.322],
                           [0.211, -0.523, 0.312]])
YIQ_TO_RGB = torch.linalg.inv(RGB_TO_YIQ)


def _channels(matrix: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Apply a 3x3 matrix to the colour of every pixel of a (N, 3, H, W) image."""
    return torch.einsum("ij,njhw->nihw", matrix.to(image), image)


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> YIQ (Y in [0, 1], I and Q about +-0.6)."""
    return _channels(RGB_TO_YIQ, image)


def yiq_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) YIQ -> RGB (not clamped)."""
    return _channels(YIQ_TO_RGB, image)


def to_luminance(image: torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
    """The luminance Y of ``image`` as a grey RGB image (Y in all three channels).

    like: another image; when given, Y is first shifted and scaled so that its mean and standard
    deviation equal those of ``like``'s luminance (Gatys et al. 2017, section 5.1), so that a dark
    painting does not darken a bright photo.  The result is clamped to [0, 1].
    """
    y = rgb_to_yiq(image)[:, :1]
    if like is not None:
        target = rgb_to_yiq(like)[:, :1]
        y = (y - y.mean()) / y.std().clamp_min(1e-6) * target.std() + target.mean()
    return y.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def with_colours_of(luminance: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
    """The luminance of ``luminance`` with the colour (I, Q) of ``colours`` (resized to match), in [0, 1]."""
    if colours.shape[-2:] != luminance.shape[-2:]:
        colours = F.interpolate(colours, size=luminance.shape[-2:], mode="bicubic", align_corners=False)
    yiq = torch.cat([rgb_to_yiq(luminance)[:, :1], rgb_to_yiq(colours)[:, 1:]], dim=1)
    return yiq_to_rgb(yiq).clamp(0, 1)


def colour_stats(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (3,) and covariance (3, 3) of the RGB values of all pixels, in float64."""
    pixels = image.detach().double().reshape(3, -1)
    mean = pixels.mean(dim=1)
    centred = pixels - mean[:, None]
    return mean, centred @ centred.T / pixels.shape[1]


def _sqrtm(cov: torch.Tensor, inverse: bool = False, eps: float = 1e-8) -> torch.Tensor:
    """The symmetric square root (or inverse square root) of a covariance matrix, via its eigenvectors."""
    values, vectors = torch.linalg.eigh(cov)
    values = values.clamp_min(0) + eps
    roots = values.rsqrt() if inverse else values.sqrt()
    return vectors @ torch.diag(roots) @ vectors.T


def match_histogram(style: torch.Tensor, content: torch.Tensor, clamp: bool = False) -> torch.Tensor:
    """Recolour ``style`` so that its colours have the mean and covariance of ``content``'s.

    A linear map of every pixel's colour (Gatys et al. 2017, section 5.2):
        x' = A (x - mean_style) + mean_content,   A = C_content^(1/2) C_style^(-1/2),
    so that A C_style A^T = C_content.  Any A with that property would do; the Cholesky factors
    (A = L_content L_style^-1) are the other common choice.  We take the *symmetric* square roots
    (from the eigen-decomposition) because the result then does not depend on the order in which the
    channels are listed: recolouring in BGR gives the same picture as in RGB, which is not true of
    Cholesky, whose triangular factors treat the first channel differently from the others.  It also
    needs no positive-definite matrix: for a grey or one-colour style a tiny ``eps`` is added to the
    eigenvalues.
    clamp: clip the result to [0, 1]; off by default, as clipping changes the statistics slightly
    (the VGG accepts values outside [0, 1]).
    """
    mean_s, cov_s = colour_stats(style)
    mean_c, cov_c = colour_stats(content)
    matrix = _sqrtm(cov_c) @ _sqrtm(cov_s, inverse=True)
    shifted = style.double() - mean_s.view(1, 3, 1, 1)
    out = (_channels(matrix, shifted) + mean_c.view(1, 3, 1, 1)).to(style.dtype)
    return out.clamp(0, 1) if clamp else out


def colour_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """How far apart the colours of two images are: the 2-Wasserstein distance between Gaussians
    fitted to their RGB values (mean and covariance), in units of pixel values (0 to about 1.7).

        d^2 = |m_a - m_b|^2 + trace(C_a + C_b - 2 (C_a^(1/2) C_b C_a^(1/2))^(1/2))

    0 means the same colour mean and covariance; the images may still differ in every other way.
    """
    mean_a, cov_a = colour_stats(a)
    mean_b, cov_b = colour_stats(b)
    root_a = _sqrtm(cov_a, eps=0)
    cross = _sqrtm(root_a @ cov_b @ root_a, eps=0)
    squared = (mean_a - mean_b).pow(2).sum() + torch.trace(cov_a + cov_b - 2 * cross)
    return math.sqrt(max(float(squared), 0.0))


# --- regions -------------------------------------------------------------------------------------

MASK_BLACK, MASK_WHITE = 0.05, 0.95  # grey levels of a mask image at or below / above which it is black / white


def _mask_levels(mask, index: int) -> torch.Tensor:
    """The grey levels of one mask image as (1, 1, h, w) weights in [0, 1]; transparent pixels are black."""
    try:
        if isinstance(mask, np.ndarray) and mask.ndim == 3 and mask.shape[2] == 4:  # RGBA: alpha says "no style"
            grey = images.load_image(mask[..., :3]).mean(dim=1, keepdim=True) * images.load_image(mask[..., 3])[:, :1]
        elif isinstance(mask, (torch.Tensor, np.ndarray)):
            grey = images.load_image(mask).mean(dim=1, keepdim=True)
        else:
            picture = images._open(mask)
            if picture.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in picture.info:
                rgba = picture.convert("RGBA")  # composited on black, not white: transparent means no style
                picture = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
            grey = images.load_image(picture).mean(dim=1, keepdim=True)
    except (OSError, ValueError) as err:
        raise ValueError(f"mask {index} is not an image ({err}): give a black-and-white image file") from None
    return ((grey - MASK_BLACK) / (MASK_WHITE - MASK_BLACK)).clamp(0, 1)


def load_masks(masks: Sequence, shape: tuple[int, int]) -> list[torch.Tensor]:
    """Masks (one per style, white where that style applies) as (1, 1, H, W) tensors of the given shape.

    masks: anything ``images.load_image`` reads (a path, PIL image, array, tensor), or a (H, W) /
    (1, 1, H, W) tensor of weights in [0, 1]; each is resized to ``shape`` (H, W).
    What a mask image's grey levels mean: a weight in [0, 1] (colours count by their grey level).  Near-black
    (at most ``MASK_BLACK``, so a JPEG's 3/255 too) is black, near-white (above ``MASK_WHITE``) is white, and
    transparent pixels are black: no style.  A pixel counts in its style's guided Gram matrix with its weight,
    and the style's weight is scaled by the mask's brightest level (``mask_strength``): a mask that is 50 % grey
    wherever it is not black gives its style half its weight there.
    The rule for overlaps and gaps: where the masks add up to more than 1 they are scaled to sum to 1 (a pixel
    white in two masks gets half of each style); elsewhere each keeps its own weight, so a pixel that no mask
    covers gets no style at all (only the content and TV terms act there).  A mask that is black everywhere
    is an error.
    """
    loaded = []
    for index, mask in enumerate(masks, start=1):
        if isinstance(mask, torch.Tensor) and mask.dim() in (2, 4) and (mask.dim() == 2 or mask.shape[1] == 1):
            grey = mask.detach().float().reshape(1, 1, *mask.shape[-2:])
            if not torch.isfinite(grey).all():
                raise ValueError(f"mask {index} contains NaN or infinite values: use values in [0, 1]")
            grey = grey.clamp(0, 1)
        else:
            grey = _mask_levels(mask, index)
        grey = F.interpolate(grey, size=tuple(shape), mode="bilinear", antialias=True, align_corners=False)
        loaded.append(grey.clamp(0, 1))
    total = torch.stack(loaded).sum(dim=0)
    for index, mask in enumerate(loaded, start=1):
        if float(mask.max()) < 1e-3:
            raise ValueError(f"mask {index} is black everywhere: it selects no pixels; make the region of "
                             "its style white")
    return [mask / total.clamp_min(1.0) for mask in loaded]


def mask_strength(mask: torch.Tensor) -> float:
    """How strongly a style applies in its region: the mask's brightest level (1 for a white region); notebook 06."""
    return float(mask.max())


def mask_at(mask: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """A (1, 1, H, W) mask carried down to a layer's (h, w): the average over each cell, as pooling does."""
    return F.adaptive_avg_pool2d(mask, tuple(shape))


def guided_gram(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The Gram matrix of the features inside a region (Gatys et al. 2017, section 4).

    features: (N, C, H, W); mask: (N or 1, 1, H, W) in [0, 1], at the features' resolution.
    G = gram_matrix(F * m) / mean(m^2): the features are weighted by the mask, and the result is divided
    by the share of the image the region covers, so that a region's Gram matrix is on the same scale as
    the Gram matrix of a whole image (a region that covers everything gives ``gram_matrix(F)``).
    """
    area = mask.pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-12).view(-1, 1, 1)
    return gram_matrix(features * mask) / area


# --- several styles ------------------------------------------------------------------------------

def blend_matrix(style_blend, n_styles: int, style_layers: Sequence[str]) -> torch.Tensor:
    """The weight of every style at every style layer, (n_styles, n_layers), each column summing to 1.

    style_blend: None (equal weights), one number per style ([0.7, 0.3]), or one row per style with one
    number per style layer ([[1, 1, 0, 0, 0], [0, 0, 1, 1, 1]]: fine layers from the first style,
    coarse layers from the second).  Weights must be finite and >= 0; they are scaled to sum to 1 at
    every layer, so ``style_weight`` keeps its meaning.  Raises ValueError with a one-line message.
    """
    layers = len(style_layers)
    if style_blend is None:
        return torch.full((n_styles, layers), 1.0 / n_styles, dtype=torch.float64)
    try:
        weights = torch.as_tensor(np.asarray(style_blend, dtype=np.float64))
    except (TypeError, ValueError):
        raise SettingError(lambda n: f"{n('style_blend')} must be numbers, one per style, got {style_blend!r}") \
            from None
    if weights.dim() == 1:
        if weights.shape[0] != n_styles:
            raise SettingError(lambda n: f"{n('style_blend')} has {weights.shape[0]} weights for {n_styles} style "
                               "image(s): give one weight per style")
        if torch.isfinite(weights).all() and (weights >= 0).all() and weights.sum() == 0:
            raise SettingError(lambda n: f"{n('style_blend')} weights are all 0: give at least one style a weight "
                               "above 0")
        weights = weights[:, None].expand(-1, layers)
    elif weights.dim() != 2 or tuple(weights.shape) != (n_styles, layers):
        raise SettingError(lambda n: f"{n('style_blend')} has shape {tuple(weights.shape)}: give one weight per "
                           f"style, or one row per style with one weight per style layer ({n_styles} x {layers})")
    if not torch.isfinite(weights).all() or (weights < 0).any():
        raise SettingError(lambda n: f"{n('style_blend')} weights must be finite numbers >= 0, got {style_blend!r}")
    weights = weights / weights.max().clamp_min(torch.finfo(weights.dtype).tiny)  # 1e308 + 1e308 would overflow
    column = weights.sum(dim=0)
    if (column == 0).any():
        unused = [name for name, total in zip(style_layers, column) if total == 0]
        raise SettingError(lambda n: f"{n('style_blend')} gives every style a weight of 0 at {', '.join(unused)}: "
                           f"give some style a weight above 0 there (or leave the layer out of {n('style_layers')})")
    return weights / column
