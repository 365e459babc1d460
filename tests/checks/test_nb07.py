"""Tests of notebook 07's checks (checks/nb07_fast_style_transfer.py, checks/nb07_training_step.py)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nst_helpers import checks, losses


def mistake_of(check, fn):
    result = check(fn, graded=False)
    assert not result.passed, result.message
    return result.mistake


# --- the residual block -------------------------------------------------------------------------------------

def make_block(*, norm="instance", pad="reflect", skip=True, relu="middle", stride=1, padding=1, transposed=False,
               norms=(True, True), in_place=False, detach=False, convs=2):
    """A residual block written the way a learner might, with one planted mistake."""
    class Block(nn.Module):
        def __init__(self, channels):
            super().__init__()
            conv = nn.ConvTranspose2d if transposed else nn.Conv2d
            mode = "zeros" if pad == "zeros" or transposed else "reflect"
            self.conv1 = conv(channels, channels, 3, stride=stride, padding=padding, padding_mode=mode)
            self.conv2 = conv(channels, channels, 3, padding=padding, padding_mode=mode)
            self.extra = nn.Conv2d(channels, channels, 3, padding=1) if convs == 3 else None
            kind = {"instance": lambda: nn.InstanceNorm2d(channels, affine=True),
                    "batch": lambda: nn.BatchNorm2d(channels), "layer": lambda: nn.GroupNorm(1, channels)}[norm]
            self.norm1 = kind() if norms[0] else nn.Identity()
            self.norm2 = kind() if norms[1] else nn.Identity()

        def forward(self, x):
            y = self.conv1(x)
            y = self.norm1(F.relu(y)) if relu == "before_norm" else self.norm1(y)
            if relu in ("middle", "after_sum"):
                y = F.relu(y)
            y = self.norm2(self.conv2(y))
            if self.extra is not None:
                y = self.extra(y)
            if detach:
                y = y.detach()
            if in_place:
                x += y
                return x
            out = x + y if skip else y
            return F.relu(out) if relu == "after_sum" else out
    return Block


class SequentialBlock(nn.Module):
    """A correct block of another shape: explicit reflection pads, plain instance norms, bias-free convolutions."""

    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=False),
                                  nn.InstanceNorm2d(channels), nn.ReLU(inplace=True),
                                  nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=False),
                                  nn.InstanceNorm2d(channels))

    def forward(self, x):
        return x + self.body(x)


class SwappedBlock(nn.Module):
    """A correct block whose second convolution is registered first."""

    def __init__(self, channels):
        super().__init__()
        self.second = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect")
        self.first = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect")

    def forward(self, x):
        y = F.relu(F.instance_norm(self.first(x)))
        return x + F.instance_norm(self.second(y))


class NoParameters(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.channels = channels

    def forward(self, x):
        conv = nn.Conv2d(self.channels, self.channels, 3, padding=1)   # a new random layer at every call
        return x + F.instance_norm(conv(x))


def numpy_block(channels):
    block = make_block()(channels)
    forward = block.forward
    block.forward = lambda x: torch.as_tensor(forward(x).detach().numpy())
    return block


WRONG_BLOCKS = {
    "batch_norm": make_block(norm="batch"), "zero_padding": make_block(pad="zeros"),
    "no_skip": make_block(skip=False), "relu_after_addition": make_block(relu="after_sum"),
    "missing_relu": make_block(relu="none"), "relu_before_norm": make_block(relu="before_norm"),
    "layer_norm": make_block(norm="layer"), "missing_norm": make_block(norms=(False, True)),
    "strided": make_block(stride=2), "no_padding": make_block(padding=0),
    "transposed_convolution": make_block(transposed=True), "modifies_input": make_block(in_place=True),
    "conv_count": make_block(convs=3), "no_parameters": NoParameters,
    "not_a_module": lambda channels: (lambda x: x),
    "wrong_shape": lambda channels: (lambda module: module)(nn.Sequential(make_block()(channels), nn.Flatten())),
    "not_differentiable": make_block(detach=True),
}


def test_residual_block_passes_the_reference_and_correct_variants():
    for block in (checks.PlainResidualBlock, make_block(), SequentialBlock, SwappedBlock):
        assert checks.check_residual_block(block, graded=False), block


@pytest.mark.parametrize("mistake", sorted(WRONG_BLOCKS))
def test_residual_block_names_each_mistake(mistake):
    assert mistake_of(checks.check_residual_block, WRONG_BLOCKS[mistake]) == mistake


def test_residual_block_names_the_second_missing_norm():
    result = checks.check_residual_block(make_block(norms=(True, False)), graded=False)
    assert result.mistake == "missing_norm" and "second convolution" in result.message


def test_residual_block_names_a_gradient_cut_in_the_skip():
    class Block(SwappedBlock):
        def forward(self, x):
            return super().forward(x) - x + x.detach()
    assert mistake_of(checks.check_residual_block, Block) == "not_differentiable"


def test_residual_block_names_a_block_that_is_not_a_tensor():
    assert mistake_of(checks.check_residual_block, numpy_block) == "not_differentiable"


def test_residual_block_names_wrong_values_and_a_nan():
    class Scaled(SwappedBlock):
        def forward(self, x):
            return 1.5 * super().forward(x)

    class Nan(SwappedBlock):
        def forward(self, x):
            return super().forward(x) * float("nan")
    assert mistake_of(checks.check_residual_block, Scaled) == "wrong_values"
    assert mistake_of(checks.check_residual_block, Nan) == "not_finite"


def test_residual_block_names_a_block_that_returns_nothing():
    class Nothing(SwappedBlock):
        def forward(self, x):
            super().forward(x)
    assert mistake_of(checks.check_residual_block, Nothing) == "returned_none"


def test_a_failed_block_is_replaced_by_the_reference_class_in_the_notebook(monkeypatch):
    namespace = {"__name__": "__main__"}
    module = type(torch)("__main__")
    module.__dict__.update(namespace)
    exec("from torch import nn\nclass ResidualBlock(nn.Module):\n    def __init__(self, channels):\n"
         "        super().__init__()\n        raise NotImplementedError()\n", module.__dict__)
    monkeypatch.setitem(__import__("sys").modules, "__main__", module)
    mine = module.ResidualBlock
    assert checks.check_residual_block(mine).mistake == "not_implemented"
    swapped = module.ResidualBlock
    assert swapped is not mine and issubclass(swapped, checks.PlainResidualBlock)
    assert swapped(4)(torch.rand(1, 4, 5, 5)).shape == (1, 4, 5, 5)
    assert mistake_of(checks.check_residual_block, swapped) == "still_the_reference"


# --- the training step --------------------------------------------------------------------------------------

def make_step(*, no_zero=False, zero_late=False, no_backward=False, no_step=False, twice=False, detach_out=False,
              on_photos=False, no_net=False, graph=False, content_from_output=False, no_style=False, no_tv=False,
              own_optimizer=None, unfreeze=False, photos_grad=False, in_place=False, backward_twice=False,
              weight_typo=False):
    """The reference step with one planted mistake."""
    def step(net, extractor, optimizer, photos, style_targets, style_weights, content_layer="relu4_2",
             style_layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"), content_weight=1.0,
             tv_weight=3.0):
        if unfreeze:
            extractor.requires_grad_(True)
        if photos_grad:
            photos.requires_grad_(True)
        if own_optimizer == "pixels":
            optimizer = torch.optim.Adam([photos.clone().requires_grad_()], lr=1e-2)   # a copy of the photos
        elif own_optimizer == "vgg":
            optimizer = torch.optim.Adam(list(net.parameters()) + list(extractor.parameters()), lr=1e-2)
        elif own_optimizer == "fresh":
            optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
        with torch.no_grad():
            content_target = extractor(photos)[content_layer]
        stylised = photos if no_net else net(photos)
        measured = photos if on_photos else stylised.detach() if detach_out else stylised
        feats = extractor(measured)
        if content_from_output:
            content_target = feats[content_layer].detach()
        loss = losses.normalized_content_loss(content_weight * (2 if weight_typo else 1), feats[content_layer],
                                              content_target)
        if not no_style:
            loss = loss + losses.style_loss(feats, style_layers, style_targets, style_weights)
        if not no_tv:
            loss = loss + losses.normalized_tv_loss(measured, tv_weight)
        if in_place:
            style_targets[0].mul_(2)
        if not (no_zero or zero_late):
            optimizer.zero_grad()
        if not no_backward and loss.requires_grad:
            loss.backward(retain_graph=backward_twice)
            if backward_twice:
                loss.backward()
        if zero_late:
            optimizer.zero_grad()
        if not no_step:
            optimizer.step()
            if twice:
                optimizer.step()
        return loss if graph else loss.item()
    return step


WRONG_STEPS = {
    "gradients_not_zeroed": dict(no_zero=True), "no_gradient": dict(zero_late=True),
    "no_step": dict(no_step=True), "stepped_twice": dict(twice=True),
    "loss_not_from_network_output": dict(detach_out=True), "returns_graph": dict(graph=True),
    "missing_term": dict(content_from_output=True), "pixels_optimised": dict(photos_grad=True),
    "optimizer_recreated": dict(own_optimizer="fresh"), "network_changed": dict(own_optimizer="vgg"),
    "vgg_not_frozen": dict(unfreeze=True), "modifies_input": dict(in_place=True),
    "wrong_gradient": dict(backward_twice=True), "wrong_loss": dict(weight_typo=True),
}


def test_training_step_passes_the_reference_and_a_tensor_loss():
    assert checks.check_training_step(checks.training_step, graded=False)
    assert checks.check_training_step(make_step(), graded=False)
    tensor_loss = make_step(graph=True)
    assert checks.check_training_step(lambda *args: tensor_loss(*args).detach(), graded=False)


@pytest.mark.parametrize("mistake", sorted(WRONG_STEPS))
def test_training_step_names_each_mistake(mistake):
    assert mistake_of(checks.check_training_step, make_step(**WRONG_STEPS[mistake])) == mistake


@pytest.mark.parametrize("planted, words", [
    (dict(content_from_output=True), "content term"), (dict(no_style=True), "style term"),
    (dict(no_tv=True), "TV term")])
def test_training_step_names_the_missing_term(planted, words):
    result = checks.check_training_step(make_step(**planted), graded=False)
    assert result.mistake == "missing_term" and words in result.message


def test_training_step_names_the_other_ways_of_missing_the_network():
    assert mistake_of(checks.check_training_step, make_step(on_photos=True)) == "loss_not_from_network_output"
    result = checks.check_training_step(make_step(no_net=True), graded=False)
    assert result.mistake == "loss_not_from_network_output" and "never called" in result.message
    result = checks.check_training_step(make_step(own_optimizer="pixels"), graded=False)
    assert result.mistake == "pixels_optimised" and "optimiser over the photos" in result.message


def test_training_step_names_a_missing_backward():
    assert mistake_of(checks.check_training_step, make_step(no_backward=True)) == "no_gradient"


def test_grading_mode_raises_for_notebook_07(monkeypatch):
    monkeypatch.setenv("NST_GRADING", "1")
    with pytest.raises(checks.ExerciseFailed):
        checks.check_residual_block(WRONG_BLOCKS["batch_norm"])
    with pytest.raises(checks.ExerciseFailed):
        checks.check_training_step(make_step(no_zero=True))
