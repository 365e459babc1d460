"""The loss that the loop of notebook 05 minimises, for one content image and its style images at one size."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from . import controls
from .losses import (gram_matrix, normalized_content_loss, normalized_style_weights, normalized_tv_loss,
                     range_penalty, style_loss)
from .inputs import prepare_inputs
from .levels import level_inputs
from .settings import Settings
from .vgg import VGGFeatures

__all__ = ["Objective", "evaluate_loss", "pad_to_multiple", "picture_region", "use_memory_format", "RANGE_WEIGHT"]

RANGE_WEIGHT = 1e3     # the range penalty's weight, per unit of the other weights (see transfer's docstring)


class Objective:
    """The total loss of Gatys et al. for one content image and one or more style images, at one resolution.

    Targets are computed once, without gradients.  ``objective(x)`` returns the total (a tensor to
    call backward on) and its parts as floats.  With ``bf16`` the VGG runs under bfloat16 autocast;
    with ``channels_last`` its weights and input are in ``torch.channels_last`` (``use_memory_format``), and
    so are the activations; Gram matrices and losses are always computed in fp32, whatever the layout.
    Every image goes through the VGG padded to a multiple of 16 pixels (``pad_to_multiple``), so that its
    edges are stylised like its interior; the style loss of x then uses the guided Gram matrix below over
    the picture's own positions (``picture_region``), so the padding is seen but not counted.

    Several styles: the style loss is the sum of one style loss per style, each measured against its
    own Gram targets and weighted by ``controls.blend_matrix(opts.style_blend, ...)`` (per style and
    layer, summing to 1 at each layer).  masks: one (1, 1, H, W) mask per style (``controls.load_masks``);
    style k then compares the *guided* Gram matrix of x, G = gram(F * m_k) / mean(m_k^2) with m_k
    carried down to each layer, with its style's ordinary Gram matrix, its weights scaled by
    ``controls.mask_strength(m_k)``.
    Introduced in notebook 05.
    """

    def __init__(self, opts: Settings, extractor: VGGFeatures, content_img: torch.Tensor,
                 style_img: torch.Tensor | Sequence[torch.Tensor], bf16: bool = False,
                 masks: Sequence[torch.Tensor] | None = None, channels_last: bool = False):
        self.opts, self.extractor, self.bf16, self.channels_last = opts, extractor, bf16, channels_last
        use_memory_format(extractor, channels_last)   # once per objective: the extractor may be shared with other runs
        style_imgs = [style_img] if isinstance(style_img, torch.Tensor) else list(style_img)
        blend = controls.blend_matrix(opts.style_blend, len(style_imgs), opts.style_layers)
        self.style_terms = []  # per style: (layers, Gram targets, weights, masks per layer or None)
        with torch.no_grad():
            content_feats = self._features(content_img)
            for k, image in enumerate(style_imgs):
                style_feats = self._features(image)
                targets = [gram_matrix(style_feats[name]) for name in opts.style_layers]
                weights = [weight * float(share) for weight, share in
                           zip(normalized_style_weights(opts.style_weight, targets), blend[k])]
                used = [i for i, weight in enumerate(weights) if weight > 0]
                region = picture_region(content_img, None if masks is None else masks[k])
                layer_masks = None if region is None else \
                    [controls.mask_at(region, content_feats[opts.style_layers[i]].shape[-2:]) for i in used]
                strength = 1.0 if masks is None else controls.mask_strength(masks[k])  # a grey mask: less style
                self.style_terms.append(([opts.style_layers[i] for i in used], [targets[i] for i in used],
                                         [weights[i] * strength for i in used], layer_masks))
        self.content_targets = [content_feats[name] for name in opts.content_layers]
        self.content_weight = opts.content_weight / max(1, len(self.content_targets))
        # The range penalty must outweigh the other terms whatever their weights.
        self.range_weight = RANGE_WEIGHT * (opts.content_weight + opts.style_weight + opts.tv_weight)

    def _features(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        image = pad_to_multiple(image)
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        with torch.autocast(image.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            feats = self.extractor(image)
        return {name: value.float() for name, value in feats.items()}

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        opts = self.opts
        feats = self._features(x)
        content = sum(normalized_content_loss(self.content_weight, feats[name], target)
                      for name, target in zip(opts.content_layers, self.content_targets))
        style = 0.0
        for layers, targets, weights, layer_masks in self.style_terms:
            if layer_masks is None and layers:
                style = style + style_loss(feats, layers, targets, weights)
            elif layers:  # guided Gram matrices: each style measured inside its region only
                style = style + sum(weight * (controls.guided_gram(feats[name], mask) - target).pow(2).sum()
                                    for name, target, weight, mask in zip(layers, targets, weights, layer_masks))
        tv = normalized_tv_loss(x, opts.tv_weight)
        out_of_range = range_penalty(x, self.range_weight)
        total = content + style + tv + out_of_range
        parts = {"total": _number(total), "content": _number(content), "style": _number(style), "tv": _number(tv)}
        return total, parts


def use_memory_format(extractor: VGGFeatures, channels_last: bool) -> VGGFeatures:
    """``extractor`` with its weights in ``torch.channels_last`` (or back in NCHW), converted only when they are not.

    The values stay the same; only their order in memory changes, and with it which convolution kernels run
    (``hardware.choose_memory_format`` decides which is faster).  Introduced in notebook 05.
    """
    layout = torch.channels_last if channels_last else torch.contiguous_format
    first = next(module for module in extractor.body if isinstance(module, torch.nn.Conv2d))
    if not first.weight.is_contiguous(memory_format=layout):
        extractor.to(memory_format=layout)
    return extractor


def pad_to_multiple(image: torch.Tensor, multiple: int = 16) -> torch.Tensor:
    """``image`` (N,C,H,W) extended at the bottom and right to a multiple of ``multiple`` pixels, by reflection.

    Why: VGG-19 halves the image in four pooling layers before relu5_1, and each drops an odd last row
    or column.  Without padding, the rows and columns beyond the last whole 16 x 16 cell reach the deep
    layers weakly or not at all, so the style barely touches them and they keep the content's colours
    (a band along the bottom of a 256 x 170 result).  Padded, every pixel reaches every layer.
    Why reflection: the added pixels carry the image's own colours and texture, so the units near the
    edge see a plausible continuation of the picture, not a black border.  Why padding rather than sizes
    rounded to a multiple of 16: the result keeps the size and aspect ratio asked for; the padding is only
    seen by the VGG and costs a few per cent more work.  The mirrored pixels pass their gradients back to
    the pixels they copy, and the style loss leaves their positions out (``picture_region``): so they are
    context only, and the last rows and columns are neither counted twice nor pushed harder than the rest
    (either gave a speckled or over-styled strip along the edge).  Images too small to reflect (a side
    shorter than its padding) repeat their last row and column instead.
    Introduced in notebook 05.
    """
    height, width = image.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h == 0 and pad_w == 0:
        return image
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(image, (0, pad_w, 0, pad_h), mode=mode)


def picture_region(image: torch.Tensor, mask: torch.Tensor | None = None,
                   multiple: int = 16) -> torch.Tensor | None:
    """Where the style loss looks, at the size ``pad_to_multiple`` gives ``image``: ``mask`` (1 everywhere when
    None) over the picture, 0 over the padding.  None when there is neither a mask nor padding (notebook 05)."""
    height, width = image.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if mask is None and pad_h == 0 and pad_w == 0:
        return None
    base = torch.ones_like(image[:, :1]) if mask is None else mask
    return F.pad(base, (0, pad_w, 0, pad_h), value=0.0)


def _number(value) -> float:
    return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)


def evaluate_loss(image: torch.Tensor, content, style, masks=None, **settings) -> dict[str, float]:
    """The loss parts of ``image`` (1,3,H,W) for ``stylize``'s settings, in fp32 at the image's size (notebook 05)."""
    return loss_parts_at(max(image.shape[-2:]), content, style, masks, **settings)(image)


def loss_parts_at(size: int, content, style, masks=None, **settings) -> Callable[[torch.Tensor], dict[str, float]]:
    """``evaluate_loss`` for images of long side ``size``, with the targets computed once: to score many images.

    Introduced in notebook 05.
    """
    opts = Settings(**{**settings, "size": size})
    extractor, content_full, styles_full, masks = prepare_inputs(opts, content, style, masks)
    content_img, style_imgs = level_inputs(opts, content_full, styles_full, opts.size)
    objective = Objective(opts, extractor, content_img, style_imgs, bf16=False, masks=masks)

    def parts(image: torch.Tensor) -> dict[str, float]:
        image = image.to(content_img.device)
        if opts.preserve_color == "luminance":
            image = controls.to_luminance(image)
        with torch.no_grad():
            return objective(image)[1]
    return parts
