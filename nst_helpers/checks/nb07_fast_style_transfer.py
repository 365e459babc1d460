"""Checks of notebook 07 (fast style transfer): the residual block with instance norm.

The block is checked by what it does: its output for one image must not depend on the other images of
the batch (instance, not batch, normalisation); then its values are compared with the block computed
from the learner's own two convolutions, and the usual wrong blocks are recomputed to name the mistake.
The training step's check is in ``nb07_training_step``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..fast.network import ResidualBlock
from .compare import GRADIENT_MISTAKES, source_attributes
from .engine import (SEED, CheckResult, Mistake, Mistakes, call, finite, match, rel_error, reports, run_check,
                     to_tensor, wrong_values)

CHANNELS = 6

BLOCK_MISTAKES = Mistakes({
    "not_a_module": ("`{name}({channels})` gives a {kind}, not an nn.Module",
                     "write a class that inherits from torch.nn.Module, calls super().__init__() first and "
                     "computes the block in forward(self, x)."),
    "no_parameters": ("the block has no learnable parameters",
                      "make the two convolutions in __init__ and keep them as attributes (self.conv1 = ...): "
                      "layers made inside forward are new random ones at every call and never learn."),
    "transposed_convolution": ("uses a transposed convolution (nn.ConvTranspose2d)",
                               "a residual block keeps the size: nn.Conv2d(channels, channels, 3) after a "
                               "padding of 1 pixel."),
    "strided": ("a convolution has stride {stride}: the block's output is smaller than its input",
                "use stride 1 in the block; only the down-sampling layers before the blocks have stride 2."),
    "no_padding": ("the convolutions are not padded: each 3 x 3 convolution loses a pixel on every side",
                   "pad by 1 pixel before each 3 x 3 convolution, by reflection: nn.ReflectionPad2d(1), or "
                   "Conv2d(..., padding=1, padding_mode=\"reflect\")."),
    "wrong_shape": ("returns shape {got} for an input of shape {expected}",
                    "a residual block returns a tensor of its input's shape: x + (the second normalised conv)."),
    "modifies_input": ("changes its input x in place", "write y = ... and return x + y, not x += y."),
    "batch_norm": ("the output for one image depends on the other images of the batch (batch normalisation?)",
                   "normalise each image's feature maps over its own pixels: nn.InstanceNorm2d(channels, "
                   "affine=True), not nn.BatchNorm2d."),
    "conv_count": ("has {count} convolutions of {channels} -> {channels} channels with a 3 x 3 kernel, not 2",
                   "make exactly two, nn.Conv2d(channels, channels, 3): both keep the number of channels."),
    "zero_padding": ("the convolutions are padded with zeros, not by reflection (the borders differ)",
                     "pad by reflection (nn.ReflectionPad2d(1), or padding_mode=\"reflect\"): zeros make a "
                     "dark frame that the network has to learn to hide."),
    "no_skip": ("the input is not added back (no skip connection)",
                "return x + (the second normalised convolution): the block learns a change to its input."),
    "relu_after_addition": ("applies a ReLU after the addition",
                            "return x + y as it is: with no ReLU after the sum the block can also make values "
                            "smaller (Johnson et al.'s blocks have none)."),
    "missing_relu": ("has no ReLU between the two convolutions",
                     "conv -> instance norm -> ReLU -> conv -> instance norm: one ReLU, after the first norm."),
    "relu_before_norm": ("applies the ReLU before the first norm", "the order is conv -> instance norm -> ReLU."),
    "layer_norm": ("normalises each image over all its channels together (layer norm), not each feature map",
                   "use nn.InstanceNorm2d(channels): one mean and variance per channel of each image."),
    "missing_norm": ("the first convolution is not followed by an instance norm",
                     "normalise after each convolution: conv -> norm -> ReLU -> conv -> norm."),
    "missing_norm/second": ("the second convolution is not followed by an instance norm",
                            "normalise after each convolution: conv -> norm -> ReLU -> conv -> norm."),
})

class PlainResidualBlock(ResidualBlock):
    """The block of notebook 07's exercise: ``PlainResidualBlock(channels)``, called as ``block(x)``.

    x + IN(conv(relu(IN(conv(x))))), 3 x 3 convolutions padded by reflection, affine instance norms:
    the library's ``fast.ResidualBlock`` with one style.  Introduced in notebook 07.
    """

    def __init__(self, channels: int):
        super().__init__(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x, x.new_ones(x.shape[0], 1))


def _conv(x, conv, pad):
    padded = F.pad(x, (1, 1, 1, 1), mode=pad) if pad != "zeros" else F.pad(x, (1, 1, 1, 1))
    return F.conv2d(padded, conv.weight, conv.bias)


def _norm(x, kind):
    if kind == "instance":
        return F.instance_norm(x, eps=1e-5)
    return F.group_norm(x, 1, eps=1e-5) if kind == "layer" else x


def _block(x, first, second, pad="reflect", norms=("instance", "instance"), relu="middle", skip=True):
    """The block computed from two convolutions; the keywords plant the usual mistakes."""
    y = _conv(x, first, pad)
    y = _norm(torch.relu(y), norms[0]) if relu == "before_norm" else _norm(y, norms[0])
    if relu in ("middle", "after_sum"):
        y = torch.relu(y)
    y = _norm(_conv(y, second, pad), norms[1])
    out = x + y if skip else y
    return torch.relu(out) if relu == "after_sum" else out


BLOCK_VARIANTS = [("zero_padding", dict(pad="zeros")), ("no_skip", dict(skip=False)),
                  ("relu_after_addition", dict(relu="after_sum")), ("missing_relu", dict(relu="none")),
                  ("relu_before_norm", dict(relu="before_norm")), ("layer_norm", dict(norms=("layer", "layer"))),
                  ("missing_norm", dict(norms=(None, "instance"))),
                  ("missing_norm/second", dict(norms=("instance", None)))]


@reports(BLOCK_MISTAKES, GRADIENT_MISTAKES.only("not_differentiable", "not_differentiable/partly"), to_tensor,
         finite, wrong_values)
def check_residual_block(block_class, graded: bool = True) -> CheckResult:
    """Check ``block_class(channels)`` -> an nn.Module whose ``block(x)`` is the residual block of notebook 07.

    x: (N, C, H, W) -> (N, C, H, W): x + IN(conv3x3(relu(IN(conv3x3(x))))), reflection padding.  The
    block is built with 6 channels under a fixed seed and run on a batch of 3 (9 x 11 pixels).
    Introduced in notebook 07.
    """
    name = getattr(block_class, "__name__", "block_class")
    g = torch.Generator().manual_seed(SEED)
    x = torch.randn(3, CHANNELS, 9, 11, generator=g)

    def body():
        with torch.random.fork_rng():
            torch.manual_seed(SEED)
            block = call(block_class, (CHANNELS,), f" when building the block, {name}({CHANNELS})")
        if not isinstance(block, nn.Module):
            raise BLOCK_MISTAKES("not_a_module", name=name, channels=CHANNELS, kind=type(block).__name__)
        if not list(block.parameters()):
            raise BLOCK_MISTAKES("no_parameters")
        if any(isinstance(m, nn.ConvTranspose2d) for m in block.modules()):
            raise BLOCK_MISTAKES("transposed_convolution")
        given = x.clone()
        try:
            got = to_tensor(call(block.forward, (given,), ""), x)
        except Mistake as m:   # x + y of two sizes fails: say why the sizes differ, when the layers tell
            raise (_size_changed(block) or m) if m.mistake == "exception" else m from None
        if not torch.equal(given, x):
            raise BLOCK_MISTAKES("modifies_input")
        _block_shape(block, got, x)
        finite(got, "the block")
        alone = to_tensor(call(block.forward, (x[:1].clone(),), " on a batch of one image"), x)
        if rel_error(alone[0], got[0]) > 1e-4:
            raise BLOCK_MISTAKES("batch_norm")
        convs = [m for m in block.modules() if isinstance(m, nn.Conv2d) and m.weight.shape == (CHANNELS,) * 2 + (3, 3)]
        if len(convs) != 2:
            raise BLOCK_MISTAKES("conv_count", count=len(convs), channels=CHANNELS)
        orders = [tuple(convs), tuple(convs[::-1])]   # the learner may have registered them in either order
        with torch.no_grad():
            errors = [rel_error(got, _block(x, *order)) for order in orders]
        order = orders[errors.index(min(errors))]
        if min(errors) > 1e-4:
            with torch.no_grad():
                candidates = [(key, _block(x, *o, **kw)) for key, kw in BLOCK_VARIANTS for o in orders]
            raise match(got, BLOCK_MISTAKES, candidates) or wrong_values(
                got, _block(x, *order).detach(), "conv -> instance norm -> ReLU -> conv -> instance norm, then + x.")
        _block_gradients(block, x, order)
        return "correct (6 channels, a batch of 3: values, gradients, each image on its own)"
    return run_check("residual_block", block_class, PlainResidualBlock, graded, body)


def _block_shape(block, got, x):
    if got.shape != x.shape:
        raise _size_changed(block) or BLOCK_MISTAKES("wrong_shape", got=tuple(got.shape), expected=tuple(x.shape))


def _size_changed(block):
    """The mistake that makes the layers of ``block`` change the size of their input, if its layers show one."""
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    strides = [m.stride[0] for m in convs if m.stride != (1, 1)]
    if strides:
        return BLOCK_MISTAKES("strided", stride=strides[0])
    pads = [m for m in block.modules() if isinstance(m, (nn.ReflectionPad2d, nn.ZeroPad2d, nn.ReplicationPad2d,
                                                          nn.ConstantPad2d))]
    if convs and not pads and all(m.padding == (0, 0) for m in convs):
        return BLOCK_MISTAKES("no_padding")
    return None


def _block_gradients(block, x, order):
    leaf = x.clone().requires_grad_(True)
    out = call(block.forward, (leaf,), " when the input requires gradients")
    found = source_attributes(type(block).forward, {"detach", "numpy", "item", "tolist", "data", "no_grad"})
    remove = f" (remove {', '.join('.' + a for a in found)})" if found else ""
    if not isinstance(out, torch.Tensor) or out.grad_fn is None:
        raise GRADIENT_MISTAKES("not_differentiable", remove=remove)
    probe = torch.randn(out.shape, generator=torch.Generator().manual_seed(SEED + 1))
    weights = [conv.weight for conv in order]
    mine = torch.autograd.grad((out * probe).sum(), [leaf, *weights], allow_unused=True)
    ref_leaf = x.clone().requires_grad_(True)
    theirs = torch.autograd.grad((_block(ref_leaf, *order) * probe).sum(), [ref_leaf, *weights])
    for grad, ref_grad in zip(mine, theirs):
        if grad is None or rel_error(grad, ref_grad) > 1e-4:
            raise GRADIENT_MISTAKES("not_differentiable/partly", remove=remove)
