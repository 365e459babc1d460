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


@pytest.mark.parametrize("height, width", [(40, 56), (70, 45), (83, 57), (100, 71)])
def test_the_last_row_and_column_are_not_pushed_harder_than_the_interior(height, width):
    # With the padding's mirrored pixels detached from the gradient, the last real row and column (the mirror's
    # axis) got 1.3-1.9 times the interior's gradient from the style loss and came out as a speckled strip.
    # Now the mirror passes its gradients back and the style loss leaves the padding's positions out.
    opts = Settings(content_layers=(), tv_weight=0)
    extractor = vgg.VGGFeatures(list(opts.style_layers), device="cpu")
    generator = torch.Generator().manual_seed(0)
    style = torch.rand(1, 3, 64, 64, generator=generator)
    x = torch.rand(1, 3, height, width, generator=generator).mul(0.8).add(0.1).requires_grad_(True)
    objective.Objective(opts, extractor, x.detach(), style)(x)[0].backward()
    strength = x.grad.abs().sum(1)[0]                     # (H, W)
    rows, columns = strength.mean(1), strength.mean(0)
    assert rows[-1] < 1.2 * rows[8:-8].mean()
    assert columns[-1] < 1.2 * columns[8:-8].mean()


def test_the_style_loss_leaves_the_padding_out():
    image = torch.rand(1, 3, 21, 40)
    region = objective.picture_region(image)
    assert region.shape[-2:] == (32, 48)
    assert torch.equal(region[..., :21, :40], torch.ones(1, 1, 21, 40)) and region.sum() == 21 * 40
    assert objective.picture_region(torch.rand(1, 3, 32, 48)) is None       # nothing to leave out
    mask = torch.rand(1, 1, 21, 40)
    assert torch.equal(objective.picture_region(image, mask)[..., :21, :40], mask)
