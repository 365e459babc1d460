"""The image transformation network of Johnson et al. (2016), with conditional instance norm (notebook 07).

    net = TransformNet(width=16, blocks=5)                  # one style
    net = TransformNet(width=16, blocks=5, n_styles=4)      # one network, four styles (Dumoulin et al. 2017)
    out = net(photo)                                        # (N,3,H,W) in [0,1] -> (N,3,H,W) in [0,1]
    out = net(photo, style=[[0.5, 0.5, 0, 0]])              # blend of styles 0 and 1

Layers, in Johnson et al.'s notation with w = width: c9s1-w, d2w, d4w, ``blocks`` residual blocks of 4w,
u2w, uw, c9s1-3.  ``c9s1-k`` is a 9 x 9 convolution with stride 1 and k filters, ``dk`` a 3 x 3 convolution
with stride 2, ``uk`` a nearest-neighbour up-sampling by 2 followed by a 3 x 3 convolution (a transposed
convolution would leave a checkerboard, Odena et al. 2016).  Every convolution pads by reflection, so the
borders see the image's own pixels rather than black.  Every convolution but the last is followed by a
normalisation and a ReLU.

The last layer maps to [0, 1] with a sigmoid: it is smooth and bounded, so the output is always a valid
image and every pixel still gets a gradient (clamping would cut the gradient of pixels out of range).
Johnson et al. used a scaled tanh; (tanh(x) + 1) / 2 is the same function as sigmoid(2x).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TransformNet", "ConditionalInstanceNorm", "ResidualBlock", "UpsampleConv", "ConvLayer",
           "style_vector", "NORMS"]

NORMS = ("instance", "batch")
MULTIPLE = 4  # two stride-2 convolutions: the network pads its input to a multiple of 4 pixels
MIN_SIDE = 8  # ... and to at least 8 pixels


class ConditionalInstanceNorm(nn.Module):
    """Instance normalisation with one learnt scale and shift per style (Dumoulin et al. 2017; notebook 07).

    Each feature map of each image is normalised to mean 0 and variance 1 over its own pixels (Ulyanov et
    al. 2016), then scaled by gamma and shifted by beta.  Here gamma and beta are tables of shape
    (n_styles, channels): a style vector ``style`` of shape (N, n_styles), one row per image, mixes them,
    gamma = style @ gamma_table.  A one-hot row picks one style; a row such as (0.5, 0.5, 0, 0) blends two.
    With ``n_styles=1`` this is ordinary instance norm with a learnt affine part.

    norm="batch" normalises with the statistics of the whole batch instead (batch normalisation, with
    running averages used in ``eval()`` mode): the contrast of one photo then depends on the other photos
    of the batch and, at inference, on the training photos; notebook 07 shows what that does to a picture.
    """

    def __init__(self, channels: int, n_styles: int = 1, norm: str = "instance"):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be 'instance' or 'batch', got {norm!r}")
        self.channels, self.n_styles, self.norm = channels, n_styles, norm
        self.gamma = nn.Parameter(torch.ones(n_styles, channels))
        self.beta = nn.Parameter(torch.zeros(n_styles, channels))
        self.batch_norm = nn.BatchNorm2d(channels, affine=False) if norm == "batch" else None

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W); style: (N, n_styles) weights (rows of a one-hot matrix for single styles)."""
        if self.batch_norm is not None:
            normalised = self.batch_norm(x)
        else:
            normalised = F.instance_norm(x, eps=1e-5)
        gamma = style @ self.gamma  # (N, C)
        beta = style @ self.beta
        return normalised * gamma[:, :, None, None] + beta[:, :, None, None]

    def extra_repr(self) -> str:
        return f"{self.channels}, n_styles={self.n_styles}, norm={self.norm!r}"


class ConvLayer(nn.Module):
    """Reflection padding and a convolution, then (unless ``last``) the conditional norm and a ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, n_styles: int = 1,
                 norm: str = "instance", last: bool = False):
        super().__init__()
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride)
        self.norm = None if last else ConditionalInstanceNorm(c_out, n_styles, norm)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.pad(x))
        return x if self.norm is None else F.relu(self.norm(x, style))


class UpsampleConv(ConvLayer):
    """Johnson et al.'s ``uk`` done as Odena et al. advise: nearest-neighbour up-sampling by 2, then a conv."""

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return super().forward(F.interpolate(x, scale_factor=2, mode="nearest"), style)


class ResidualBlock(nn.Module):
    """x + norm(conv(relu(norm(conv(x))))): two 3 x 3 convolutions with the same number of channels.

    The block learns a change to its input rather than a new image, so a network of many blocks starts
    close to passing the photo's structure through (He et al. 2016; Johnson et al. use five of them).
    There is no ReLU after the sum, as in Johnson et al.'s supplementary material.
    """

    def __init__(self, channels: int, n_styles: int = 1, norm: str = "instance"):
        super().__init__()
        self.pad1, self.conv1 = nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3)
        self.norm1 = ConditionalInstanceNorm(channels, n_styles, norm)
        self.pad2, self.conv2 = nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3)
        self.norm2 = ConditionalInstanceNorm(channels, n_styles, norm)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(self.pad1(x)), style))
        return x + self.norm2(self.conv2(self.pad2(y)), style)


class TransformNet(nn.Module):
    """Johnson et al.'s transformation network (notebook 07): a photo in, the stylised photo out, in one pass.

    width:    filters of the first layer (Johnson et al.: 32); the layers have w, 2w, 4w, 4w ..., 2w, w.
    blocks:   number of residual blocks (Johnson et al.: 5).
    n_styles: styles the network has learnt, each with its own scales and shifts in every norm layer
              (conditional instance norm, Dumoulin et al. 2017); 1 for a single-style network.
    norm:     "instance" (the method) or "batch" (to see why instance norm matters).
    names:    optional names of the styles, in order (kept in the saved file; ``style_vector`` uses them).

    ``net(x, style=None)``: x is (N, 3, H, W) RGB in [0, 1], of any size (it is padded by reflection to
    a multiple of 4 pixels, at least 8, and cropped back); ``style`` is a style index, a name, a list of
    ``n_styles`` blend weights, or an (N, n_styles) tensor (see ``style_vector``); None means style 0.
    Returns (N, 3, H, W) in [0, 1].

    The shipped networks use width 16 and 5 blocks (0.43 M parameters, a quarter of Johnson et al.'s
    1.68 M): half the filters, which Johnson's own repository reports loses little, and all five blocks,
    which widen what each output pixel sees (109 px, against 77 px with three), so strokes can be larger.
    """

    def __init__(self, width: int = 16, blocks: int = 5, n_styles: int = 1, norm: str = "instance",
                 names: list[str] | None = None):
        super().__init__()
        for label, value, low in (("width", width, 1), ("blocks", blocks, 0), ("n_styles", n_styles, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{label} must be a whole number >= {low}, got {value!r}")
        if names is not None and len(names) != n_styles:
            raise ValueError(f"names has {len(names)} entries but the network has n_styles={n_styles}")
        self.config = dict(width=width, blocks=blocks, n_styles=n_styles, norm=norm,
                           names=list(names) if names is not None else None)
        self.n_styles, self.names = n_styles, self.config["names"]
        w, k = width, dict(n_styles=n_styles, norm=norm)
        self.down = nn.ModuleList([ConvLayer(3, w, 9, **k), ConvLayer(w, 2 * w, 3, stride=2, **k),
                                   ConvLayer(2 * w, 4 * w, 3, stride=2, **k)])
        self.res = nn.ModuleList([ResidualBlock(4 * w, **k) for _ in range(blocks)])
        self.up = nn.ModuleList([UpsampleConv(4 * w, 2 * w, 3, **k), UpsampleConv(2 * w, w, 3, **k),
                                 ConvLayer(w, 3, 9, last=True, **k)])

    def forward(self, x: torch.Tensor, style=None) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"TransformNet expects an RGB batch of shape (N, 3, H, W), got {tuple(x.shape)}")
        weights = style_vector(self, style, x.shape[0]).to(x.device, x.dtype)
        height, width = x.shape[-2:]
        # A multiple of 4, and at least 8 pixels so that the 9 x 9 convolutions can pad by reflection.
        pad_h = max(MIN_SIDE, height + -height % MULTIPLE) - height
        pad_w = max(MIN_SIDE, width + -width % MULTIPLE) - width
        if pad_h or pad_w:
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        for layer in (*self.down, *self.res, *self.up):
            x = layer(x, weights)
        return torch.sigmoid(x)[..., :height, :width]


def style_vector(net: TransformNet, style, batch: int = 1) -> torch.Tensor:
    """The (batch, n_styles) blend weights that ``net(x, style)`` uses (notebook 07).

    style: None (style 0); an index; a style name from ``net.names``; a list or 1-D tensor of
    ``n_styles`` weights (negative weights are refused; they are divided by their sum, so [1, 1, 0, 0] is
    an even blend of the first two styles); or an (N, n_styles) tensor, used as it is (rows may differ
    per image, which is how training mixes styles in one batch).
    """
    n = net.n_styles
    if style is None:
        style = 0
    if isinstance(style, str):
        if not net.names or style not in net.names:
            known = ", ".join(net.names) if net.names else "none (the network has no style names)"
            raise ValueError(f"this network has no style {style!r}; its styles are: {known}")
        style = net.names.index(style)
    if isinstance(style, int) and not isinstance(style, bool):
        if not 0 <= style < n:
            raise ValueError(f"style index {style} is out of range: the network has {n} style(s), 0 to {n - 1}")
        return F.one_hot(torch.full((batch,), style), n).float()
    weights = torch.as_tensor(style, dtype=torch.float32)
    if weights.dim() == 2 and weights.shape[-1] == n and weights.shape[0] in (1, batch):
        return weights.expand(batch, n)
    if weights.dim() != 1 or weights.shape[0] != n:
        raise ValueError(f"style must be an index, a name or {n} blend weights, got shape {tuple(weights.shape)}")
    if not torch.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"blend weights must be finite, >= 0 and not all 0, got {weights.tolist()}")
    return (weights / weights.sum()).expand(batch, n)
