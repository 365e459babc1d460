"""Reference implementations of the losses of Gatys et al. (2016).

The signatures follow the classic course homework, so that the notebooks' text
and this code read the same:

    content_loss(content_weight, content_current, content_original)
    gram_matrix(features, normalize=True)
    style_loss(feats, style_layers, style_targets, style_weights)
    tv_loss(img, tv_weight)

These are *raw sums*: their values grow with the image size.  The optimisation
loop uses the size-normalised variants at the bottom of this file, so that one
setting of the weights keeps working at 256 px and at 1024 px.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

__all__ = [
    "content_loss",
    "gram_matrix",
    "style_loss",
    "tv_loss",
    "normalized_content_loss",
    "normalized_style_weights",
    "normalized_tv_loss",
    "range_penalty",
]


def content_loss(content_weight: float, content_current: torch.Tensor,
                 content_original: torch.Tensor) -> torch.Tensor:
    """Content loss  L_c = w_c * sum_ij (F_ij - P_ij)^2 (notebook 01).

    content_current, content_original: activations of one layer, same shape
    (N, C, H, W); F is the current image's, P the content image's.
    Returns a scalar tensor.
    """
    _same_shape(content_current, content_original, "content_current", "content_original")
    return content_weight * (content_current - content_original).pow(2).sum()


def gram_matrix(features: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Gram matrix of a batch of feature maps (notebook 02).

    features: (N, C, H, W).  Returns (N, C, C) with
    G[n, i, j] = sum_k F[n, i, k] F[n, j, k] over the H*W positions k,
    divided by C*H*W when ``normalize`` is true.  Batched, no Python loop.
    """
    if features.dim() != 4:
        raise ValueError(f"gram_matrix expects features of shape (N, C, H, W), got {tuple(features.shape)}")
    n, c, h, w = features.shape
    gram = _GramProduct.apply(features)   # F F^T, as torch.bmm(flat, flat.transpose(1, 2)) would give it
    if normalize:
        gram = gram / (c * h * w)
    return gram


class _GramProduct(torch.autograd.Function):
    """G = F F^T for features (N, C, H, W) with F = features.reshape(N, C, H*W), and a cheaper backward pass.

    Autograd would differentiate bmm(F, F^T) as two products, one per factor, and add the two gradients, one
    of them in transposed memory order.  G is symmetric, so dL/dF = (g + g^T) F in one product (g = dL/dG):
    the same numbers, in a fraction of the time.  For features in ``torch.channels_last``, F is a view whose
    transpose R = (N, H*W, C) is in memory order; their gradient is computed in that order, R (g + g^T), and so
    comes back in channels_last: the ReLU and the convolution before them get the layout they computed in.
    BENCHMARKS.md, round three (T6).
    """

    @staticmethod
    def forward(ctx, features: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(features)   # the input itself, so that the backward pass can be differentiated too
        flat = features.flatten(2)        # a view, in NCHW and in channels_last
        return torch.bmm(flat, flat.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        features, = ctx.saved_tensors
        flat = features.flatten(2)
        symmetric = (grad + grad.transpose(1, 2)).to(flat.dtype)   # (under autocast G may be bf16, F is not)
        if not features.is_contiguous() and features.is_contiguous(memory_format=torch.channels_last):
            # R = flat^T is (N, H*W, C) in memory order; R (g + g^T), transposed back, is channels_last
            return torch.bmm(flat.transpose(1, 2), symmetric).transpose(1, 2).view(features.shape)
        return torch.bmm(symmetric, flat).view(features.shape)


def style_loss(feats: Mapping[str, torch.Tensor] | Sequence[torch.Tensor],
               style_layers: Sequence[str] | Sequence[int],
               style_targets: Sequence[torch.Tensor],
               style_weights: Sequence[float]) -> torch.Tensor:
    """Style loss  L_s = sum_l w_l * sum_ij (G^l_ij - A^l_ij)^2 (notebook 03).

    feats: the current image's activations, a dict keyed by layer name or a
    list indexed by position; style_layers: the keys (names or indices) to
    use; style_targets[i]: the Gram matrix A of the style image at
    style_layers[i], shape (N or 1, C, C); style_weights[i]: w_l.
    G is computed with ``gram_matrix(..., normalize=True)``.
    """
    if not (len(style_layers) == len(style_targets) == len(style_weights)):
        raise ValueError(
            f"style_layers, style_targets and style_weights must have the same length, got "
            f"{len(style_layers)}, {len(style_targets)} and {len(style_weights)}")
    total = None
    for i, (layer, target, weight) in enumerate(zip(style_layers, style_targets, style_weights)):
        gram = gram_matrix(feats[layer])
        if target.dim() != 3 or target.shape[1:] != gram.shape[1:] or target.shape[0] not in (1, gram.shape[0]):
            raise ValueError(f"style_targets[{i}] has shape {tuple(target.shape)} but the Gram matrix of layer "
                             f"{layer!r} has shape {tuple(gram.shape)}; compute the target with gram_matrix "
                             "on the same layer")
        term = weight * (gram - target).pow(2).sum()
        total = term if total is None else total + term
    if total is None:
        raise ValueError("style_loss needs at least one style layer")
    return total


def tv_loss(img: torch.Tensor, tv_weight: float) -> torch.Tensor:
    """Total-variation loss  L_tv = w_t * (sum (x[i+1,j] - x[i,j])^2 + sum (x[i,j+1] - x[i,j])^2) (notebook 04).

    img: (N, C, H, W).  Sums over the batch, the channels and all positions.
    """
    if img.dim() != 4:
        raise ValueError(f"tv_loss expects an image of shape (N, C, H, W), got {tuple(img.shape)}")
    vertical = (img[:, :, 1:, :] - img[:, :, :-1, :]).pow(2).sum()
    horizontal = (img[:, :, :, 1:] - img[:, :, :, :-1]).pow(2).sum()
    return tv_weight * (vertical + horizontal)


# --- size-normalised variants used by the optimisation loop -----------------
#
# The raw sums above grow with the number of positions, so a weight tuned at
# 256 px would be far too strong at 512 px, and they differ by orders of
# magnitude between layers and between weight sets (Caffe's VGG sees pixels
# in 0-255, torchvision's in standardised units).  The loop therefore measures
# each term *relative to its target*: a value of 1 means "as far from the
# target as activations of zeros" (not a black image, whose activations are not zero).  Ratios of sums do not depend on H and W, nor
# on the scale of the activations, so one setting of the weights keeps
# working at every size, for every layer and with either weight set.

def normalized_content_loss(content_weight: float, content_current: torch.Tensor,
                            content_original: torch.Tensor) -> torch.Tensor:
    """``content_loss`` divided by sum P^2:  w_c * sum (F - P)^2 / sum P^2 (notebook 05)."""
    scale = content_original.pow(2).sum().clamp_min(1e-12)
    return content_loss(content_weight, content_current, content_original) / scale


def normalized_style_weights(style_weight: float, style_targets: Sequence[torch.Tensor]) -> list[float]:
    """Per-layer weights w_l = style_weight / (L * sum A_l^2) for ``style_loss`` (notebook 03).

    With them every layer contributes on the same scale (style_weight / L for features of
    zeros), whatever its number of channels or the size of its activations.
    """
    count = len(style_targets)
    return [style_weight / (count * max(float(target.pow(2).sum()), 1e-12)) for target in style_targets]


def normalized_tv_loss(img: torch.Tensor, tv_weight: float) -> torch.Tensor:
    """``tv_loss`` divided by the number of elements of ``img`` (a mean; pixels in [0, 1]) (notebook 05)."""
    return tv_loss(img, tv_weight / img.numel())


def range_penalty(x: torch.Tensor, weight: float) -> torch.Tensor:
    """weight * mean(relu(x - 1)^2 + relu(-x)^2): zero inside [0, 1], growing smoothly outside (notebook 05).

    The loop adds it to the loss instead of clamping the pixels between steps (see ``transfer``).
    """
    return weight * (torch.relu(x - 1).pow(2) + torch.relu(-x).pow(2)).mean()


def _same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} has shape {tuple(a.shape)} but {name_b} has shape {tuple(b.shape)}; "
                         "they must be activations of the same layer for images of the same size")
