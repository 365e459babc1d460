"""Gatys et al.'s rescaled VGG-19: every filter's mean activation 1, the network's function unchanged.

Introduced in notebook 02 (section 4.1).  Gatys et al. (2016) "normalized the network by scaling the weights such
that the mean activation of each convolutional filter over images and positions is equal to one"; because a ReLU
commutes with a positive factor, and so do max- and average pooling, this changes no feature's *pattern*, only
its scale: dividing a filter's weights and bias by s makes its output s times smaller, and multiplying the next
layer's weights for that input channel by s gives the next layer back exactly the input it had before.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .vgg import VGGFeatures


def mean_activations(net: VGGFeatures, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """{conv layer name: mean of its ReLU's output per channel, shape (C,)} over `images` and all positions.

    images: (N, 3, H, W) RGB in [0, 1], run one at a time to keep the memory small.
    Introduced in notebook 02.
    """
    _check(net, images)
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    device = next(net.parameters()).device
    with torch.no_grad():
        for image in images:
            x = net.preprocess(image[None].to(device))
            for name, module in net.body.named_children():
                x = module(x)
                if isinstance(module, nn.Conv2d):
                    total = F.relu(x).sum(dim=(0, 2, 3))
                    sums[name] = sums[name] + total if name in sums else total
                    counts[name] = counts.get(name, 0) + x.shape[-2] * x.shape[-1]
    return {name: total / counts[name] for name, total in sums.items()}


def rescale_to_unit_mean(net: VGGFeatures, images: torch.Tensor) -> tuple[VGGFeatures, dict[str, torch.Tensor]]:
    """A copy of `net` in which every convolution's mean ReLU activation over `images` is 1, plus the factors.

    For each convolution l with factors s_l (its channels' mean activations in the original network), the copy
    divides the weights and bias of l by s_l and multiplies the weights of the next convolution, for each of
    its input channels, by s_l.  So every layer of the copy computes the original layer's output divided by
    s_l, channel by channel: the same network up to one factor per channel.  A channel that never fires on
    `images` (mean 0) keeps the factor 1.  Returns (copy, {conv name: s_l}).  Introduced in notebook 02.
    """
    means = mean_activations(net, images)
    factors = {name: torch.where(mean > 0, mean, torch.ones_like(mean)) for name, mean in means.items()}
    rescaled = copy.deepcopy(net)
    previous = None
    with torch.no_grad():
        for name, module in rescaled.body.named_children():
            if not isinstance(module, nn.Conv2d):
                continue
            if previous is not None:
                module.weight.mul_(factors[previous].view(1, -1, 1, 1))   # undo the previous layer's division
            module.weight.div_(factors[name].view(-1, 1, 1, 1))
            module.bias.div_(factors[name])
            previous = name
    return rescaled, factors


def _check(net, images) -> None:
    if not isinstance(net, VGGFeatures):
        raise ValueError(f"rescaling needs a VGGFeatures network, got {type(net).__name__}")
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"the calibration images must be an RGB tensor of shape (N, 3, H, W), got {shape}")
