"""The objective: every pixel, the edge rows and columns included, reaches the deepest style layer."""

import pytest
import torch

from nst_helpers import objective, vgg
from nst_helpers.settings import Settings


@pytest.mark.parametrize("height, width", [(40, 56), (170, 256), (21, 32)])
def test_every_pixel_reaches_the_deepest_style_layer(height, width):
    # Without padding, the rows and columns beyond the last whole 16x16 cell never reach relu5_1 (after pool4):
    # their gradient from that layer is exactly zero and they keep the content's colours.
    opts = Settings(style_layers=("relu5_1",), content_layers=(), tv_weight=0, weights="random")
    extractor = vgg.VGGFeatures(["relu5_1"], weights="random", device="cpu")
    generator = torch.Generator().manual_seed(0)
    style = torch.rand(1, 3, 48, 48, generator=generator)
    x = torch.rand(1, 3, height, width, generator=generator).mul(0.8).add(0.1).requires_grad_(True)
    total = objective.Objective(opts, extractor, x.detach(), style)
    total(x)[0].backward()
    strength = x.grad.abs().sum(1)[0]                     # (H, W)
    interior = strength[: height // 16 * 16, : width // 16 * 16].mean()
    for edge in (strength[-8:, :], strength[:, -8:]):     # the last 8 rows, the last 8 columns
        assert edge.mean() > 0.3 * interior


def test_padding_keeps_the_size_and_only_adds_rows_and_columns():
    image = torch.rand(1, 3, 21, 40)
    padded = objective.pad_to_multiple(image)
    assert padded.shape[-2:] == (32, 48)
    assert torch.equal(padded[..., :21, :40], image)
    tiny = torch.rand(1, 3, 1, 5)
    assert objective.pad_to_multiple(tiny).shape[-2:] == (16, 16)
    assert objective.pad_to_multiple(torch.rand(1, 3, 32, 16)).shape[-2:] == (32, 16)
