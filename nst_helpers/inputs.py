"""The inputs of a run (notebook 05): images from a path, URL or example name, and the network, once per session.

    load_any("chelsea", size=256)        # an example name, a path, a URL, bytes, PIL, array or tensor
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from . import controls, examples, images
from .settings import Settings
from .vgg import VGGFeatures, default_device

__all__ = ["load_any", "prepare_inputs"]


_EXTRACTORS: dict[tuple, VGGFeatures] = {}


def _extractor(layers: Sequence[str], weights: str, pooling: str, device: torch.device) -> VGGFeatures:
    """One extractor per (layers, weights, pooling, device), built once per session."""
    key = (tuple(layers), str(weights), pooling, str(device))
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = VGGFeatures(layers, weights=weights, pooling=pooling, device=device)
    return _EXTRACTORS[key]


def _styles(style) -> list:
    """One style source, or a list/tuple of them, as a list."""
    return list(style) if isinstance(style, (list, tuple)) else [style]


def prepare_inputs(opts: Settings, content, style, masks=None) -> tuple:
    """The extractor, the content image, the style images and the masks at the sizes of ``opts``, on its device.

    Checks the number of blend weights and masks against the number of styles, and loads the images, before
    the network is built.
    Introduced in notebook 05.
    """
    styles = _styles(style)
    if not styles:
        raise ValueError("give at least one style image")
    controls.blend_matrix(opts.style_blend, len(styles), opts.style_layers)
    if masks is not None and len(_styles(masks)) != len(styles):
        raise ValueError(f"got {len(_styles(masks))} mask(s) for {len(styles)} style image(s): give one mask "
                         "per style, white where that style applies")
    content_img = _load_role(content, opts.size, "content")
    style_imgs = [_load_role(source, opts.style_long_side, "style") for source in styles]
    device = torch.device(opts.device) if opts.device else default_device()
    extractor = _extractor(opts.content_layers + opts.style_layers, opts.weights, opts.pooling, device)
    content_img, style_imgs = content_img.to(device), [style.to(device) for style in style_imgs]
    if masks is not None:
        masks = [mask.to(device) for mask in controls.load_masks(_styles(masks), content_img.shape[-2:])]
    return extractor, content_img, style_imgs, masks


def _load_role(source, size: int, role: str) -> torch.Tensor:
    """``load_any``, with errors about the pixels (NaN, wrong shape, ...) naming the image."""
    try:
        return load_any(source, size=size)
    except ValueError as err:
        raise ValueError(f"the {role} image: {err}") from None


def load_any(source, size: int | None = None) -> torch.Tensor:
    """An image from anything ``images.load_image`` takes, or an example name (``"chelsea"``) (notebook 05).

    The one loader of "path, URL or example name": ``stylize``, the CLI and the panel all read through it.
    """
    if isinstance(source, str) and source in examples.names():
        return examples.load(source, size=size)
    return images.load_image(source, size=size)
