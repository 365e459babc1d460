"""Checks of notebook 00 (images and VGG-19 features): Caffe preprocessing and receptive fields."""

from __future__ import annotations

import torch

from ..vgg import CAFFE_MEAN_BGR, IMAGENET_MEAN, IMAGENET_STD, layer_names
from .engine import (COMMON_MISTAKES, SEED, TOLERANCE, CheckResult, Mistakes, call, finite, match, rel_error,
                     reports, run_check, to_tensor, wrong_values)

CAFFE_MISTAKES = Mistakes({
    "wrong_shape": ("wrong output shape: expected {expected}, got {got}",
                    "keep the shape (N, 3, H, W): only the values change."),
    "modifies_input": ("changes the input image in place",
                       "write x = x * 255 (a new tensor), not x *= 255 or x[...] = ..."),
    "wrong_dtype": ("returns {got}, expected {expected}", "keep float32 (no .double())."),
    "not_differentiable": ("the result is not differentiable (no grad_fn)",
                           "use torch operations only (no NumPy, no .detach()): style transfer differentiates "
                           "through this step to reach the pixels."),
    "not_bgr": ("the channels are still in RGB order",
                "reverse the channel dimension (image.flip(1), or image[:, [2, 1, 0]]): Caffe's VGG wants B, G, R."),
    "mean_wrong_order": ("subtracts the mean in RGB order",
                         "the mean (103.939, 116.779, 123.68) is given for B, G, R: subtract it after reversing the "
                         "channels, so that 103.939 comes off the blue channel."),
    "mean_not_subtracted": ("the mean pixel is not subtracted",
                            "subtract (103.939, 116.779, 123.68) from the B, G, R channels."),
    "not_scaled": ("the pixels are still in 0-1",
                   "multiply by 255 before subtracting the mean: the mean (103.9, …) is in 0-255 units."),
    "mean_before_scale": ("subtracts the mean before multiplying by 255",
                          "first x * 255, then minus the mean (both in 0-255 units)."),
    "flipped_wrong_dim": ("reverses the wrong dimension",
                          "the channels are dimension 1 of (N, 3, H, W): flip(1), not the batch, height or width."),
    "torchvision_recipe": ("uses torchvision's preprocessing (ImageNet mean and standard deviation)",
                           "these are the original Caffe weights: BGR, 0-255, minus the mean pixel, no division."),
    "torchvision_recipe/bgr": ("uses torchvision's preprocessing in BGR order",
                               "these are the original Caffe weights: BGR, 0-255, minus the mean pixel, no "
                               "division."),
})

RECEPTIVE_MISTAKES = Mistakes({
    "wrong_keys": ("should return a dict with one entry per layer, in order (got {keys}…)",
                   "build {{name: field}} for every name of the list, ReLUs and poolings included."),
    "not_finite": ("some values are not finite numbers", "return plain ints."),
    "wrong_values": ("wrong sizes (for {names}…: got {values}…)",
                     "walk the layers in order: a 3x3 convolution adds 2 grid steps, a 2x2 pooling adds 1 step "
                     "and doubles the step, a ReLU adds nothing."),
    "step_not_doubled": ("the grid step never grows",
                         "after each pooling the positions are 2x further apart: double the step (step *= 2)."),
    "conv_ignores_step": ("every convolution adds 2 pixels, whatever the depth",
                          "a 3x3 convolution adds 2 steps of the current grid: field += 2 * step."),
    "pool_adds_nothing": ("a pooling only doubles the step",
                          "a 2x2 pooling also widens the field by one step (field += step) before the step "
                          "doubles."),
    "pool_order": ("a pooling widens the field by two steps (doubles the step first?)",
                   "a 2x2 window covers 1 extra step of the grid it is applied to: first field += step, then "
                   "step *= 2."),
    "starts_at_zero": ("every value is 1 too small",
                       "before any layer, one position sees 1 pixel: start from field = 1."),
    "relu_grows": ("the ReLUs widen the field", "a ReLU acts on each position alone: it leaves the field unchanged."),
})


def caffe_preprocess(image: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1], (N, 3, H, W) -> what the original VGG-19 expects: BGR, 0-255, minus the mean pixel.

    Introduced in notebook 00.
    """
    mean = torch.tensor(CAFFE_MEAN_BGR, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    return image.flip(1) * 255 - mean


def receptive_fields(names) -> dict:
    """{layer name: side in pixels of the input patch one position of that layer sees} for VGG's layers in order.

    A 3x3 convolution (stride 1) adds 2 steps of the current grid; a 2x2 pooling (stride 2) adds 1 step
    and doubles the step; a ReLU changes nothing.  The grid step starts at 1 pixel.
    Introduced in notebook 00.
    """
    return _receptive(names)


def _receptive(names, start=1, conv_step=True, pool_adds=1, doubles=True, relu_adds=False):
    """The receptive-field walk, with switches that reproduce the usual mistakes."""
    field, step, out = start, 1, {}
    for name in names:
        if name.startswith("conv") or (relu_adds and name.startswith("relu")):
            field += 2 * step if conv_step else 2
        elif name.startswith("pool"):
            if pool_adds == "after":
                step *= 2 if doubles else 1
                field += step
            else:
                field += pool_adds * step
                step *= 2 if doubles else 1
        out[name] = field
    return out


@reports(CAFFE_MISTAKES, to_tensor, finite, wrong_values)
def check_caffe_preprocess(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(image)``: RGB [0, 1] (N, 3, H, W) -> BGR, times 255, minus (103.939, 116.779, 123.68) (B, G, R).

    Introduced in notebook 00.
    """
    g = torch.Generator().manual_seed(SEED)
    images = [torch.rand(1, 3, 4, 5, generator=g), torch.rand(2, 3, 3, 6, generator=g)]
    images[0][0, 0] = 0.9   # a reddish image: the channels differ clearly
    images[0][0, 2] = 0.1

    def body():
        for image in images:
            given = image.clone()
            got = to_tensor(call(fn, (given,), ""), image)
            expected = caffe_preprocess(image)
            if got.shape != expected.shape:
                raise CAFFE_MISTAKES("wrong_shape", expected=tuple(expected.shape), got=tuple(got.shape))
            finite(got, "caffe_preprocess")
            if not torch.equal(given, image):
                raise CAFFE_MISTAKES("modifies_input")
            if got.dtype != expected.dtype:
                raise CAFFE_MISTAKES("wrong_dtype", got=got.dtype, expected=expected.dtype)
            if rel_error(got, expected) > TOLERANCE:
                raise _diagnose_caffe(got, image) or wrong_values(got, expected, None)
        image = images[1].clone().requires_grad_(True)
        got = call(fn, (image,), " when the image requires gradients")
        if not isinstance(got, torch.Tensor) or got.grad_fn is None:
            raise CAFFE_MISTAKES("not_differentiable")
        return f"correct ({len(images)} cases checked): BGR order, 0-255, the mean of each channel subtracted"
    return run_check("caffe_preprocess", fn, caffe_preprocess, graded, body)


def _diagnose_caffe(got, image):
    mean_bgr = torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    mean_rgb = mean_bgr.flip(1)
    bgr = image.flip(1)
    imagenet = (image - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return match(got, CAFFE_MISTAKES, [
        ("not_bgr", image * 255 - mean_rgb), ("not_bgr", image * 255 - mean_bgr),
        ("mean_wrong_order", bgr * 255 - mean_rgb), ("mean_not_subtracted", bgr * 255),
        ("not_scaled", bgr - mean_bgr), ("not_scaled", bgr - mean_bgr / 255),
        ("mean_before_scale", (bgr - mean_bgr) * 255),
        ("flipped_wrong_dim", image.flip(0) * 255 - mean_bgr), ("flipped_wrong_dim", image.flip(2) * 255 - mean_bgr),
        ("flipped_wrong_dim", image.flip(3) * 255 - mean_bgr),
        ("torchvision_recipe", imagenet), ("torchvision_recipe/bgr", imagenet.flip(1)),
    ])


@reports(RECEPTIVE_MISTAKES)
def check_receptive_fields(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(names)`` -> {name: receptive field in pixels} for a list of VGG layer names in order (notebook 00)."""
    full = layer_names()
    cases = [full, ["conv1_1", "relu1_1", "pool1", "pool2", "conv3_1"], ["pool1", "conv2_1", "relu2_1", "conv2_2"]]

    def body():
        for names in cases:
            got = call(fn, (list(names),), "")
            if got is None:
                raise COMMON_MISTAKES("returned_none", advice="return the dictionary {name: size}.")
            if not isinstance(got, dict) or list(got) != list(names):
                keys = list(got)[:3] if isinstance(got, dict) else type(got).__name__
                raise RECEPTIVE_MISTAKES("wrong_keys", keys=keys)
            values = [got[n] for n in names]
            if not all(isinstance(v, (int, float)) and float(v) == float(v) and abs(v) != float("inf")
                       for v in values):
                raise RECEPTIVE_MISTAKES("not_finite")
            if values != list(_receptive(names).values()):
                raise _diagnose_receptive(values, names) or RECEPTIVE_MISTAKES(
                    "wrong_values", names=names[:3], values=values[:6])
        return f"correct ({len(cases)} lists of layers checked; conv5_1 sees {_receptive(full)['conv5_1']} px)"
    return run_check("receptive_fields", fn, receptive_fields, graded, body)


def _diagnose_receptive(values, names):
    for mistake, switches in [("step_not_doubled", dict(doubles=False)), ("conv_ignores_step", dict(conv_step=False)),
                              ("pool_adds_nothing", dict(pool_adds=0)), ("pool_order", dict(pool_adds="after")),
                              ("starts_at_zero", dict(start=0)), ("relu_grows", dict(relu_adds=True))]:
        if values == list(_receptive(names, **switches).values()):
            return RECEPTIVE_MISTAKES(mistake)
    return None
