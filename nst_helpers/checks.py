"""Exercise checks: run a learner's loss function against the reference and name the mistake.

    from nst_helpers import checks
    checks.check_gram_matrix(gram_matrix)   # prints "✅ gram_matrix: correct (5 cases checked)"

Each check calls the learner's function on several small random inputs (fixed seed, float32,
batches of 1-3 different items, H != W != C), compares with ``nst_helpers.losses``, and prints
one line.  It returns a ``CheckResult`` that is true when the function is correct.  Relative
error: max|x - y| / max(1e-8, max(|x| + |y|)), which must be below 1e-5.

Every check ends in ``finish`` (write new checks the same way):
  * learning mode (the default): a failed check prints its line and swaps the reference
    implementation in for the learner's name in the notebook, with a one-line notice, so that the
    cells below still run;
  * grading mode (``nbgrader autograde``, which sets NBGRADER_EXECUTION, or NST_GRADING=1): the same,
    then it raises ``ExerciseFailed``, so that the autograded cell fails and scores no points.
``graded=False`` (for cells that demonstrate a mistake on purpose) only prints and returns.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import inspect
import os
import signal
import sys
import textwrap
import threading
import time
import traceback
import warnings
from dataclasses import dataclass

import torch

from . import losses

__all__ = ["CheckResult", "ExerciseFailed", "check_content_loss", "check_gram_matrix", "check_style_loss",
           "check_tv_loss", "finish", "grading",
           "check_caffe_preprocess", "check_receptive_fields", "check_reconstruct", "check_gram_distance",
           "check_normalized_style_weights", "check_tv_isotropic", "check_range_penalty", "check_transfer_loop",
           "check_match_histogram", "check_guided_gram"]

TOLERANCE = 1e-5
CHECK_TIME_LIMIT_S = 60  # a learner's function that runs longer is stopped (a loop that never ends)
_SEED = 0


@dataclass(frozen=True)
class CheckResult:
    """What a check found.  ``bool(result)`` is ``result.passed``.

    mistake: an identifier such as "first_item_only" (None when passed);
    notes: remarks on a correct answer, e.g. ("python_loop",); message: the printed text.
    """
    name: str
    passed: bool
    mistake: str | None
    message: str
    notes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.message

    def _ipython_display_(self) -> None:
        """The message is already printed; show nothing more in Jupyter."""


class ExerciseFailed(AssertionError):
    """Raised by a failed check in grading mode."""


def grading() -> bool:
    """True while nbgrader autogrades or validates (NBGRADER_EXECUTION is set) or when NST_GRADING=1."""
    return (os.environ.get("NBGRADER_EXECUTION", "") in ("autograde", "validate")
            or os.environ.get("NST_GRADING", "0") not in ("", "0"))


def finish(result: CheckResult, fn=None, reference=None, graded: bool = True) -> CheckResult:
    """Print ``result``; when it failed and ``graded``, fall back to ``reference`` and, in grading mode, raise.

    The fallback rebinds the learner's name (``fn.__name__`` in the notebook's namespace, where ``fn``
    was defined) to ``reference`` and says so in one line.  Functions defined in modules are left alone.
    """
    print(result.message)
    if result.passed or not graded:
        return result
    name = getattr(fn, "__name__", None)
    namespace = getattr(fn, "__globals__", None)
    in_notebook = isinstance(namespace, dict) and namespace.get("__name__") == "__main__"
    if reference is not None and name and in_notebook and namespace.get(name) is fn:
        namespace[name] = _stand_in(reference)
        print(f"↪ until yours passes, `{name}` is the reference implementation, so the cells below still run.")
    if grading():
        raise ExerciseFailed(result.message)
    return result


class _Mistake(Exception):
    def __init__(self, mistake: str, title: str, advice: str):
        super().__init__(title)
        self.mistake, self.title, self.advice = mistake, title, advice


def rel_error(x: torch.Tensor, y: torch.Tensor) -> float:
    """max|x - y| / max(1e-8, max(|x| + |y|)), computed in float64; inf when either holds NaN or inf."""
    x, y = x.detach().double(), y.detach().double()
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):  # NaN or inf never counts as close
        return float("inf")
    return float((x - y).abs().max() / (x.abs() + y.abs()).max().clamp_min(1e-8))


# --- the four checks ---------------------------------------------------------

def check_content_loss(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(content_weight, content_current, content_original)`` -> scalar tensor."""
    g = torch.Generator().manual_seed(_SEED)
    cases = [(w, torch.randn(shape, generator=g), torch.randn(shape, generator=g))
             for w, shape in [(0.37, (1, 4, 5, 3)), (2.5, (2, 3, 4, 6))]]
    return _run("content_loss", fn, graded, cases, grad_arg=1, diagnose=_diagnose_content)


def check_gram_matrix(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(features, normalize)``: (N, C, H, W) -> (N, C, C), divided by C*H*W if normalize."""
    g = torch.Generator().manual_seed(_SEED)
    shapes = [(2, 3, 5, 4), (3, 4, 3, 6), (1, 5, 4, 2)]
    cases = [(torch.randn(s, generator=g), True) for s in shapes]
    cases += [(torch.randn(s, generator=g), False) for s in shapes[:2]]
    return _run("gram_matrix", fn, graded, cases, grad_arg=0, diagnose=_diagnose_gram,
                check_shape=_gram_shape, vectorise="reshape to (N, C, H*W) and use torch.bmm (or @) on "
                "the whole batch at once")


def check_style_loss(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(feats, style_layers, style_targets, style_weights)`` -> scalar tensor."""
    g = torch.Generator().manual_seed(_SEED)

    def target(shape):
        return losses.gram_matrix(torch.randn(shape, generator=g))

    feats_dict = {name: torch.randn(shape, generator=g) for name, shape in
                  [("relu1_1", (1, 3, 6, 5)), ("relu2_1", (1, 5, 4, 3)), ("relu3_1", (1, 6, 2, 3)),
                   ("relu4_2", (1, 6, 2, 3))]}
    case_dict = (feats_dict, ["relu1_1", "relu3_1", "relu2_1"],
                 [target((1, 3, 6, 5)), target((1, 6, 2, 3)), target((1, 5, 4, 3))], [0.7, 3.0, 12.0])
    feats_list = [torch.randn(shape, generator=g) for shape in [(2, 4, 3, 5), (2, 4, 5, 2), (2, 6, 3, 3)]]
    case_list = (feats_list, [1, 0], [target((1, 4, 5, 2)), target((1, 4, 3, 5))], [4.0, 0.25])
    return _run("style_loss", fn, graded, [case_dict, case_list], grad_arg=0, diagnose=_diagnose_style,
                hint="style_loss uses your gram_matrix: make sure check_gram_matrix passes first.")


def check_tv_loss(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(img, tv_weight)``: (N, C, H, W) -> scalar tensor."""
    g = torch.Generator().manual_seed(_SEED)
    cases = [(torch.randn(2, 3, 5, 4, generator=g), 0.25), (torch.randn(3, 3, 4, 7, generator=g), 4.0),
             (torch.rand(1, 3, 6, 6, generator=g), 1.5)]
    return _run("tv_loss", fn, graded, cases, grad_arg=0, diagnose=_diagnose_tv,
                vectorise="subtract shifted slices, e.g. img[:, :, 1:, :] - img[:, :, :-1, :]")


# --- notebook 00: Caffe preprocessing and receptive fields ---

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)   # the same numbers as nst_helpers.vgg.CAFFE_MEAN_BGR


def caffe_preprocess(image: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1], (N, 3, H, W) -> what the original VGG-19 expects: BGR, 0-255, minus the mean pixel."""
    mean = torch.tensor(CAFFE_MEAN_BGR, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    return image.flip(1) * 255 - mean


def receptive_fields(names) -> dict:
    """{layer name: side in pixels of the input patch one position of that layer sees} for VGG's layers in order.

    A 3x3 convolution (stride 1) adds 2 steps of the current grid; a 2x2 pooling (stride 2) adds 1 step
    and doubles the step; a ReLU changes nothing.  The grid step starts at 1 pixel.
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


def _finite(got, name):
    if not torch.isfinite(got).all():
        raise _Mistake("not_finite", "returns NaN or inf", f"look for a division by zero or a log of 0 in {name}.")


def _run_exercise(name, fn, reference, graded, body) -> CheckResult:
    """Shared frame of the exercise checks below: ``body()`` raises _Mistake or returns the success text."""
    try:
        _not_the_stand_in(fn, reference)
        result = CheckResult(name, True, None, f"✅ {name}: {body()}")
    except _Mistake as m:
        result = CheckResult(name, False, m.mistake, f"❌ {name}: {m.title} — {m.advice}")
    return finish(result, fn, reference, graded)


def check_caffe_preprocess(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(image)``: RGB [0, 1] (N, 3, H, W) -> BGR, times 255, minus (103.939, 116.779, 123.68) (B, G, R)."""
    g = torch.Generator().manual_seed(_SEED)
    images = [torch.rand(1, 3, 4, 5, generator=g), torch.rand(2, 3, 3, 6, generator=g)]
    images[0][0, 0] = 0.9   # a reddish image: the channels differ clearly
    images[0][0, 2] = 0.1

    def body():
        for image in images:
            given = image.clone()
            got = _to_tensor(_call(fn, (given,), ""), image)
            expected = caffe_preprocess(image)
            if got.shape != expected.shape:
                raise _Mistake("wrong_shape", f"wrong output shape: expected {tuple(expected.shape)}, got "
                               f"{tuple(got.shape)}", "keep the shape (N, 3, H, W): only the values change.")
            _finite(got, "caffe_preprocess")
            if not torch.equal(given, image):
                raise _Mistake("modifies_input", "changes the input image in place",
                               "write x = x * 255 (a new tensor), not x *= 255 or x[...] = ...")
            if got.dtype != expected.dtype:
                raise _Mistake("wrong_dtype", f"returns {got.dtype}, expected {expected.dtype}",
                               "keep float32 (no .double()).")
            if rel_error(got, expected) > TOLERANCE:
                raise _diagnose_caffe(got, image) or _wrong_values(got, expected, None)
        image = images[1].clone().requires_grad_(True)
        got = _call(fn, (image,), " when the image requires gradients")
        if not isinstance(got, torch.Tensor) or got.grad_fn is None:
            raise _Mistake("not_differentiable", "the result is not differentiable (no grad_fn)",
                           "use torch operations only (no NumPy, no .detach()): style transfer "
                           "differentiates through this step to reach the pixels.")
        return f"correct ({len(images)} cases checked): BGR order, 0-255, the mean of each channel subtracted"
    return _run_exercise("caffe_preprocess", fn, caffe_preprocess, graded, body)


def _diagnose_caffe(got, image):
    mean_bgr = torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    mean_rgb = mean_bgr.flip(1)
    bgr = image.flip(1)
    imagenet = (image - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    not_bgr = ("not_bgr", "the channels are still in RGB order",
               "reverse the channel dimension (image.flip(1), or image[:, [2, 1, 0]]): Caffe's VGG wants B, G, R.")
    not_scaled = ("not_scaled", "the pixels are still in 0-1",
                  "multiply by 255 before subtracting the mean: the mean (103.9, …) is in 0-255 units.")
    wrong_dim = ("flipped_wrong_dim", "reverses the wrong dimension",
                 "the channels are dimension 1 of (N, 3, H, W): flip(1), not the batch, height or width.")
    return _match(got, [
        (*not_bgr, image * 255 - mean_rgb), (*not_bgr, image * 255 - mean_bgr),
        ("mean_wrong_order", "subtracts the mean in RGB order",
         "the mean (103.939, 116.779, 123.68) is given for B, G, R: subtract it after reversing the channels, "
         "so that 103.939 comes off the blue channel.", bgr * 255 - mean_rgb),
        ("mean_not_subtracted", "the mean pixel is not subtracted",
         "subtract (103.939, 116.779, 123.68) from the B, G, R channels.", bgr * 255),
        (*not_scaled, bgr - mean_bgr), (*not_scaled, bgr - mean_bgr / 255),
        ("mean_before_scale", "subtracts the mean before multiplying by 255",
         "first x * 255, then minus the mean (both in 0-255 units).", (bgr - mean_bgr) * 255),
        (*wrong_dim, image.flip(0) * 255 - mean_bgr), (*wrong_dim, image.flip(2) * 255 - mean_bgr),
        (*wrong_dim, image.flip(3) * 255 - mean_bgr),
        ("torchvision_recipe", "uses torchvision's preprocessing (ImageNet mean and standard deviation)",
         "these are the original Caffe weights: BGR, 0-255, minus the mean pixel, no division.", imagenet),
        ("torchvision_recipe", "uses torchvision's preprocessing in BGR order",
         "these are the original Caffe weights: BGR, 0-255, minus the mean pixel, no division.", imagenet.flip(1)),
    ])


def check_receptive_fields(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(names)`` -> {name: receptive field in pixels} for a list of VGG layer names in order."""
    from .vgg import layer_names
    full = layer_names()
    cases = [full, ["conv1_1", "relu1_1", "pool1", "pool2", "conv3_1"], ["pool1", "conv2_1", "relu2_1", "conv2_2"]]

    def body():
        for names in cases:
            got = _call(fn, (list(names),), "")
            if got is None:
                raise _Mistake("returned_none", "returns None", "return the dictionary {name: size}.")
            if not isinstance(got, dict) or list(got) != list(names):
                keys = list(got)[:3] if isinstance(got, dict) else type(got).__name__
                raise _Mistake("wrong_keys", f"should return a dict with one entry per layer, in order (got {keys}…)",
                               "build {name: field} for every name of the list, ReLUs and poolings included.")
            values = [got[n] for n in names]
            if not all(isinstance(v, (int, float)) and float(v) == float(v) and abs(v) != float("inf")
                       for v in values):
                raise _Mistake("not_finite", "some values are not finite numbers", "return plain ints.")
            if values != list(_receptive(names).values()):
                raise _diagnose_receptive(values, names) or _Mistake(
                    "wrong_values", f"wrong sizes (for {names[:3]}…: got {values[:6]}…)",
                    "walk the layers in order: a 3x3 convolution adds 2 grid steps, a 2x2 pooling adds 1 step "
                    "and doubles the step, a ReLU adds nothing.")
        return f"correct ({len(cases)} lists of layers checked; conv5_1 sees {_receptive(full)['conv5_1']} px)"
    return _run_exercise("receptive_fields", fn, receptive_fields, graded, body)


def _diagnose_receptive(values, names):
    candidates = [
        ("step_not_doubled", "the grid step never grows",
         "after each pooling the positions are 2x further apart: double the step (step *= 2).",
         dict(doubles=False)),
        ("conv_ignores_step", "every convolution adds 2 pixels, whatever the depth",
         "a 3x3 convolution adds 2 steps of the current grid: field += 2 * step.", dict(conv_step=False)),
        ("pool_adds_nothing", "a pooling only doubles the step",
         "a 2x2 pooling also widens the field by one step (field += step) before the step doubles.",
         dict(pool_adds=0)),
        ("pool_order", "a pooling widens the field by two steps (doubles the step first?)",
         "a 2x2 window covers 1 extra step of the grid it is applied to: first field += step, then step *= 2.",
         dict(pool_adds="after")),
        ("starts_at_zero", "every value is 1 too small",
         "before any layer, one position sees 1 pixel: start from field = 1.", dict(start=0)),
        ("relu_grows", "the ReLUs widen the field",
         "a ReLU acts on each position alone: it leaves the field unchanged.", dict(relu_adds=True)),
    ]
    for mistake, title, advice, switches in candidates:
        if values == list(_receptive(names, **switches).values()):
            return _Mistake(mistake, title, advice)
    return None


# --- notebook 01: reconstructing an image from one layer ---

def reconstruct(net, layer, photo, steps, seed=0):
    """Start from uniform noise and change the pixels with L-BFGS until net(x)[layer] matches net(photo)[layer].

    net: a VGGFeatures that has ``layer``; photo: (1, 3, H, W); steps: loss evaluations.  Returns the image.
    """
    with torch.no_grad():
        target = net(photo)[layer]
    start = torch.rand(photo.shape, generator=torch.Generator().manual_seed(seed))
    x = start.to(photo.device).requires_grad_(True)
    optimizer = torch.optim.LBFGS([x], max_iter=steps, tolerance_grad=0, tolerance_change=0, history_size=50)

    def closure():
        optimizer.zero_grad()
        loss = losses.content_loss(1.0, net(x)[layer], target) / target.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return x.detach()


class _SpyNet(torch.nn.Module):
    """A small random-weight VGG that records how a learner's loop calls it."""

    def __init__(self, layer, photo):
        super().__init__()
        from .vgg import VGGFeatures
        self.net = VGGFeatures([layer], weights="random", pooling="avg", device="cpu")
        self.photo = photo
        self.target_calls = self.pixel_calls = 0
        self.first_pixels = None
        self.stale_gradient = False

    def forward(self, image):
        out = self.net(image)
        if not image.requires_grad:
            if image.shape == self.photo.shape and torch.equal(image, self.photo):
                self.target_calls += 1
            return out
        self.pixel_calls += 1
        if self.first_pixels is None:
            self.first_pixels = image.detach().clone()
        if image.is_leaf:  # when the gradient reaches the layer, the pixels' old gradient must be gone
            def look(grad, pixels=image):
                if pixels.grad is not None and pixels.grad.abs().sum() > 0:
                    self.stale_gradient = True
            for value in out.values():
                if value.requires_grad:
                    value.register_hook(look)
        return out


def check_reconstruct(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(net, layer, photo, steps, seed=0)`` on a tiny problem: a random-weight VGG, a 14 x 18 image."""
    layer, steps = "conv2_1", 30
    photo = torch.rand(1, 3, 14, 18, generator=torch.Generator().manual_seed(_SEED + 2))

    def body():
        threads = torch.get_num_threads()
        torch.set_num_threads(1)   # a problem this small runs fastest, and steadiest, on one thread
        try:
            return _check_reconstruct_on(fn, layer, steps, photo)
        finally:
            torch.set_num_threads(threads)
    return _run_exercise("reconstruct", fn, reconstruct, graded, body)


def _check_reconstruct_on(fn, layer, steps, photo):
    """The body of check_reconstruct: run ``fn`` on a spy network, then judge what it did."""
    spy = _SpyNet(layer, photo.clone())
    weights = [p.detach().clone() for p in spy.parameters()]
    got = _call(fn, (spy, layer, photo.clone(), steps), "")
    if got is None:
        raise _Mistake("returned_none", "returns None", "return the optimised image x (x.detach()).")
    got = _to_tensor(got, photo)
    if got.shape != photo.shape:
        raise _Mistake("wrong_shape", f"returns shape {tuple(got.shape)}, expected the image's {tuple(photo.shape)}",
                       "return the image x, not the loss or the activations.")
    _finite(got, "the loop (is the loss divided by something that can be 0?)")
    if any(not torch.equal(p.detach(), w) for p, w in zip(spy.parameters(), weights)):
        raise _Mistake("network_changed", "changes the network's weights",
                       "optimise only the pixels: torch.optim.LBFGS([x]), never net.parameters().")
    if spy.target_calls == 0:
        raise _Mistake("target_not_from_photo", "never computes the photo's activations",
                       "the target is net(photo)[layer], computed once before the loop.")
    if spy.pixel_calls == 0:
        raise _Mistake("pixels_not_optimised", "the network never sees an image that requires gradients",
                       "make x a leaf with x.requires_grad_(True), give [x] to the optimiser and compute "
                       "net(x) inside the closure.")
    if torch.allclose(spy.first_pixels, photo, atol=1e-3):
        raise _Mistake("starts_from_photo", "starts from the photo itself",
                       "start from noise (torch.rand with the seed): starting from the answer proves nothing.")
    if spy.target_calls > 1:
        raise _Mistake("target_recomputed", f"computes the photo's activations {spy.target_calls} times",
                       "compute the target once, before the loop (under torch.no_grad()), not in the closure.")
    if spy.stale_gradient:
        raise _Mistake("gradients_not_zeroed", "the gradients of the pixels add up from one step to the next",
                       "call optimizer.zero_grad() in the closure, before loss.backward().")
    best_image = reconstruct(spy.net, layer, photo, steps)
    with torch.no_grad():
        target = spy.net(photo)[layer]
        before, after, best = [float((spy.net(image)[layer] - target).pow(2).sum() / target.pow(2).sum())
                               for image in (spy.first_pixels, got, best_image)]
    if torch.allclose(got, photo, atol=1e-6):
        raise _Mistake("returns_photo", "returns the photo", "return the optimised image x.")
    if torch.allclose(got, spy.first_pixels):
        raise _Mistake("image_unchanged", "the image never changed",
                       "call optimizer.step(closure), and make the closure return the loss after loss.backward().")
    if after > max(10 * best, 0.05 * before):
        raise _Mistake("not_converged", f"the relative loss only went from {before:.3g} to {after:.3g} in "
                       f"{steps} steps (the reference reaches {best:.2g})",
                       "use torch.optim.LBFGS([x], max_iter=steps) and one optimizer.step(closure).")
    return (f"correct: on a tiny problem the relative loss went from {before:.3g} to {after:.2g} in {steps} "
            "steps; target computed once, only the pixels optimised, gradients zeroed")


# --- notebook 02: comparing the textures of two images ---

def gram_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> torch.Tensor:
    """||G_a - G_b|| / (||G_a|| + ||G_b||) per batch item (Frobenius norms of Gram matrices normalised by C*H*W).

    features_a: (N, C, H, W), features_b: (N, C, H', W') (the sizes may differ).  Returns (N,), values in [0, 1].
    """
    ga, gb = losses.gram_matrix(features_a), losses.gram_matrix(features_b)
    norm = lambda g: g.flatten(1).norm(dim=1)  # noqa: E731
    return norm(ga - gb) / (norm(ga) + norm(gb))


def check_gram_distance(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(features_a, features_b)`` -> (N,) relative Gram distances (see ``gram_distance``)."""
    g = torch.Generator().manual_seed(_SEED)
    a = torch.rand(2, 4, 5, 6, generator=g)
    shuffled = a.flatten(2)[:, :, torch.randperm(30, generator=g)].reshape(2, 4, 5, 6)
    cases = [(a, torch.rand(2, 4, 5, 6, generator=g)),             # same size
             (a, shuffled),                                           # same texture, positions shuffled
             (a[:1], torch.rand(1, 4, 3, 7, generator=g) * 2),       # different sizes
             (torch.rand(1, 4, 2, 3, generator=g), torch.rand(1, 4, 4, 6, generator=g))]

    def body():
        for fa, fb in cases:
            expected = gram_distance(fa, fb)
            got = _to_tensor(_call(fn, (fa.clone(), fb.clone()), ""), expected)
            if got.shape != expected.shape:
                advice = "return one distance per batch item: shape (N,)."
                raise _Mistake("wrong_shape", f"wrong output shape: expected {tuple(expected.shape)}, got "
                               f"{tuple(got.shape)}", advice)
            _finite(got, "gram_distance")
            if rel_error(got, expected) > 1e-4:
                raise _diagnose_gram_distance(got, fa, fb) or _wrong_values(got, expected, None)
        return (f"correct ({len(cases)} cases: different images, the same image with its positions shuffled, "
                "different sizes)")
    return _run_exercise("gram_distance", fn, gram_distance, graded, body)


def _diagnose_gram_distance(got, fa, fb):
    norm = lambda g: g.flatten(1).norm(dim=1)  # noqa: E731
    ga, gb = losses.gram_matrix(fa), losses.gram_matrix(fb)
    ra, rb = losses.gram_matrix(fa, normalize=False), losses.gram_matrix(fb, normalize=False)
    d = norm(ga - gb)
    same_shape = fa.shape == fb.shape
    return _match(got, [
        ("compares_positions", "compares the features position by position, not their Gram matrices",
         "take gram_matrix of each first: the texture statistics must not depend on where things are.",
         norm(fa - fb) / (norm(fa) + norm(fb)) if same_shape else None),
        ("not_normalized", "uses Gram matrices without the division by C*H*W",
         "use gram_matrix(..., normalize=True): otherwise a larger image has a larger Gram matrix, and images of "
         "different sizes can't be compared.", norm(ra - rb) / (norm(ra) + norm(rb))),
        ("squared", "uses squared norms", "use the Frobenius norm itself (.norm()), not its square.",
         d.pow(2) / (norm(ga) + norm(gb))), ("squared", "uses squared norms",
                                               "use the Frobenius norm itself (.norm()), not its square.",
                                               d.pow(2) / (norm(ga).pow(2) + norm(gb).pow(2))),
        ("not_relative", "is not divided by the sizes of the two Gram matrices",
         "divide by ||G_a|| + ||G_b||, so that the distance lies between 0 and 1.", d),
        ("one_sided", "divides by the norm of one Gram matrix only",
         "divide by ||G_a|| + ||G_b||: the distance must not depend on the order of the two images.",
         d / norm(gb)), ("one_sided", "divides by the norm of one Gram matrix only",
                         "divide by ||G_a|| + ||G_b||: the distance must not depend on the order of the two images.",
                         d / norm(ga)),
    ])


# --- notebook 03: per-layer style weights ---------------------------------------------

def check_normalized_style_weights(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(style_weight, style_targets)`` -> one weight per layer, w_l = style_weight / (L * sum A_l^2)."""
    reference = losses.normalized_style_weights
    name = "normalized_style_weights"
    g = torch.Generator().manual_seed(_SEED)
    cases = [(30.0, [losses.gram_matrix(scale * torch.randn(shape, generator=g)) for scale, shape in
                     [(1.0, (1, 3, 5, 4)), (40.0, (1, 6, 3, 3)), (0.2, (1, 4, 2, 5))]]),
             (2.5, [losses.gram_matrix(scale * torch.randn(shape, generator=g)) for scale, shape in
                    [(3.0, (1, 5, 4, 4)), (0.5, (1, 2, 6, 3))]])]
    try:
        _not_the_stand_in(fn, reference)
        for style_weight, targets in cases:
            given = _clone(targets)
            got = _call(fn, (style_weight, given), "")
            if got is None:
                raise _Mistake("returned_none", "returns None", "add a `return` statement at the end.")
            try:
                values = [float(w) for w in got]
            except (TypeError, ValueError, RuntimeError):
                raise _Mistake("wrong_shape", f"returns {type(got).__name__}, not one number per layer",
                               "return a list with one weight (a float) per style target.") from None
            if len(values) != len(targets):
                raise _Mistake("wrong_shape", f"returns {len(values)} weights for {len(targets)} layers",
                               "return one weight per style target, in the same order.")
            if not all(torch.isfinite(torch.tensor(values))):
                raise _Mistake("not_finite", "returns NaN or inf", "check for a division by zero.")
            if not _same(given, targets):
                raise _Mistake("modifies_input", "changes the style targets in place",
                               "compute sums from the targets without writing into them.")
            expected = torch.tensor(reference(style_weight, targets), dtype=torch.float64)
            got_values = torch.tensor(values, dtype=torch.float64)
            if rel_error(got_values, expected) > TOLERANCE:
                raise _diagnose_layer_weights(got_values, style_weight, targets) or _wrong_values(
                    got_values, expected, "each layer's term for features of zeros is w_l * sum A_l^2: "
                    "choose w_l so that this is style_weight / L.")
        result = CheckResult(name, True, None, f"✅ {name}: correct ({len(cases)} cases checked)")
    except _Mistake as m:
        result = CheckResult(name, False, m.mistake, f"❌ {name}: {m.title} — {m.advice}")
    return finish(result, fn, reference, graded)


def _diagnose_layer_weights(got, style_weight, targets):
    count = len(targets)
    squares = torch.tensor([float(t.double().pow(2).sum()) for t in targets], dtype=torch.float64)
    sums = torch.tensor([float(t.double().sum()) for t in targets], dtype=torch.float64)
    abs_sums = torch.tensor([float(t.double().abs().sum()) for t in targets], dtype=torch.float64)
    sizes = torch.tensor([float(t.numel()) for t in targets], dtype=torch.float64)
    if torch.allclose(got, got[0].expand_as(got), rtol=1e-6):
        return _Mistake("same_for_all_layers", "every layer gets the same weight",
                        "the layers' Gram matrices differ in size by orders of magnitude: divide by each "
                        "layer's own sum A_l^2.")
    not_squared = ("not_squared", "divides by a sum that is not a sum of squares",
                   "a layer's term is a sum of SQUARED differences; for features of zeros it is sum A_l^2.")
    return _match(got, [
        ("missing_layer_count", f"the weights are {count} times too large (the 1/L is missing)",
         "share style_weight among the L layers: divide by L as well.", style_weight / squares),
        ("ignores_style_weight", "style_weight is not used", "multiply by style_weight.", 1 / (count * squares)),
        ("missing_layer_count", "style_weight is not shared among the layers", "divide by L as well.",
         torch.full_like(got, style_weight) / squares),
        ("norm_not_squared", "divides by the norm of A_l, not its square",
         "divide by sum A_l^2 (the squared norm), the size of the term itself.",
         style_weight / (count * squares.sqrt())),
        (*not_squared, style_weight / (count * abs_sums)), (*not_squared, style_weight / (count * sums)),
        ("by_element_count", "divides by the number of entries, not by the size of the target",
         "divide by sum A_l^2: the number of entries does not say how large the values are.",
         style_weight / (count * sizes)),
        ("inverted", "multiplies by sum A_l^2 instead of dividing", "divide by sum A_l^2.",
         style_weight * squares / count)])


# --- notebook 04: isotropic total variation ------------------------------------------------

def _tv_isotropic(img: torch.Tensor, tv_weight: float, eps: float = 1e-8) -> torch.Tensor:
    """tv_weight * sum over channels and positions (i < H-1, j < W-1) of sqrt(dv^2 + dh^2 + eps)."""
    vertical = img[:, :, 1:, :-1] - img[:, :, :-1, :-1]
    horizontal = img[:, :, :-1, 1:] - img[:, :, :-1, :-1]
    return tv_weight * (vertical.pow(2) + horizontal.pow(2) + eps).sqrt().sum()


_tv_isotropic.__name__ = _tv_isotropic.__qualname__ = "tv_isotropic"


def check_tv_isotropic(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(img, tv_weight, eps=1e-8)``: isotropic TV, sqrt(dv^2 + dh^2 + eps) summed, a scalar tensor."""
    reference, name = _tv_isotropic, "tv_isotropic"
    g = torch.Generator().manual_seed(_SEED)
    flat = torch.zeros(1, 3, 6, 7)
    flat[:, :, :, 4:] = 0.8                       # flat regions, a vertical and a horizontal edge
    flat[:, :, 3:, :] += 0.1
    cases = [(torch.rand(2, 3, 5, 4, generator=g), 0.25), (torch.rand(1, 3, 4, 7, generator=g), 4.0), (flat, 1.5)]
    try:
        _not_the_stand_in(fn, reference)
        for img, weight in cases:
            given = img.clone()
            try:
                got = _to_tensor(_call(fn, (given, weight), ""), img)
            except _Mistake as m:
                if "size of tensor" in m.title:
                    raise _Mistake("shape_mismatch", "the vertical and horizontal differences have different "
                                   "shapes", "crop both to (H-1, W-1) before adding them: "
                                   "img[:, :, 1:, :-1] - img[:, :, :-1, :-1] and the same along the last axis.") \
                        from None
                raise
            _scalar_shape(got, None, None)
            if not torch.isfinite(got).all():
                raise _Mistake("not_finite", "returns NaN or inf", "check the square root and its argument.")
            if not torch.equal(given, img):
                raise _Mistake("modifies_input", "changes img in place", "don't use in-place operations on img.")
            expected = reference(img, weight)
            if rel_error(got, expected) > TOLERANCE:
                raise _diagnose_tv_isotropic(got, img, weight) or _wrong_values(
                    got, expected, "per channel and position: sqrt(dv^2 + dh^2 + eps) on the (H-1, W-1) crop.")
        with torch.enable_grad():
            leaf = flat.clone().requires_grad_(True)
            out = _call(fn, (leaf, 1.5), " when the input requires gradients")
            if not isinstance(out, torch.Tensor) or out.grad_fn is None:
                raise _Mistake("not_differentiable", "the result is not differentiable (no grad_fn)",
                               "use only torch operations on img.")
            grad, = torch.autograd.grad(out, leaf, allow_unused=True)
            if grad is None or not torch.isfinite(grad).all():
                raise _Mistake("eps_not_inside_sqrt", "the gradient is NaN where the image is flat",
                               "sqrt has an infinite slope at 0: add eps INSIDE the square root, "
                               "(dv**2 + dh**2 + eps).sqrt().")
            _check_gradients(fn, cases[0], 0, reference)
        loops = _loops(fn)
        notes, extra = ((), "") if not loops else (
            ("python_loop",), f"\n💡 works, but vectorise it: your code uses a Python {' and '.join(loops)}; "
                              "subtract shifted slices instead.")
        result = CheckResult(name, True, None, f"✅ {name}: correct ({len(cases)} cases checked){extra}", notes)
    except _Mistake as m:
        result = CheckResult(name, False, m.mistake, f"❌ {name}: {m.title} — {m.advice}")
    return finish(result, fn, reference, graded)


def _diagnose_tv_isotropic(got, img, weight, eps=1e-8):
    dv = img[:, :, 1:, :-1] - img[:, :, :-1, :-1]
    dh = img[:, :, :-1, 1:] - img[:, :, :-1, :-1]
    full_v, full_h = img[:, :, 1:, :] - img[:, :, :-1, :], img[:, :, :, 1:] - img[:, :, :, :-1]
    magnitude = (dv.pow(2) + dh.pow(2) + eps).sqrt()
    first = None if img.shape[0] == 1 else _tv_isotropic(img[:1], weight, eps)
    eps_outside = ("eps_not_inside_sqrt", "eps is not inside the square root",
                   "sqrt has an infinite slope at 0, so flat regions give NaN gradients: write "
                   "(dv**2 + dh**2 + eps).sqrt().")
    length = (dv.pow(2) + dh.pow(2)).sqrt()
    return _match(got, [
        (*eps_outside, weight * length.sum()), (*eps_outside, weight * (length + eps).sum()),
        ("anisotropic", "adds |dv| + |dh|: that is the anisotropic (L1) TV",
         "take the length of the gradient vector: sqrt(dv^2 + dh^2 + eps).",
         weight * (dv.abs() + dh.abs()).sum()),
        ("anisotropic", "adds |dv| + |dh|: that is the anisotropic (L1) TV",
         "take the length of the gradient vector: sqrt(dv^2 + dh^2 + eps).",
         weight * (full_v.abs().sum() + full_h.abs().sum())),
        ("no_square_root", "the square root is missing (that is the squared TV of the first exercise)",
         "take the square root of dv^2 + dh^2 + eps at each position.", weight * (dv.pow(2) + dh.pow(2)).sum()),
        ("channels_combined", "the channels are joined inside one square root",
         "here each channel has its own term: sum over channels of sqrt(dv^2 + dh^2 + eps).",
         weight * (dv.pow(2).sum(1) + dh.pow(2).sum(1) + eps).sqrt().sum()),
        (*_NO_WEIGHT, magnitude.sum()), (*_MEAN, weight * magnitude.mean()),
        ("first_item_only", "only the first batch item is counted",
         "sum over the whole batch (all N images), not img[0] only.", first)])


# --- notebook 05: the range penalty and the optimisation loop ------------------------------

def _range_penalty(x: torch.Tensor, weight: float) -> torch.Tensor:
    """weight * mean(relu(x - 1)^2 + relu(-x)^2): zero inside [0, 1], growing smoothly outside."""
    return weight * (torch.relu(x - 1).pow(2) + torch.relu(-x).pow(2)).mean()


_range_penalty.__name__ = _range_penalty.__qualname__ = "range_penalty"


def check_range_penalty(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(x, weight)`` -> weight * mean(relu(x - 1)^2 + relu(-x)^2), a scalar tensor."""
    reference, name = _range_penalty, "range_penalty"
    g = torch.Generator().manual_seed(_SEED)
    cases = [(0.1 + 0.8 * torch.rand(1, 3, 4, 4, generator=g), 7.0),     # all inside: must be exactly 0
             (torch.rand(1, 3, 5, 4, generator=g) * 2 - 0.5, 1000.0),
             (torch.rand(2, 3, 4, 6, generator=g) * 1.6 - 0.3, 2.5)]
    try:
        _not_the_stand_in(fn, reference)
        for x, weight in cases:
            given = x.clone()
            got = _to_tensor(_call(fn, (given, weight), ""), x)
            _scalar_shape(got, None, None)
            if not torch.isfinite(got).all():
                raise _Mistake("not_finite", "returns NaN or inf", "use only relu (or clamp), squares and a mean.")
            if not torch.equal(given, x):
                raise _Mistake("modifies_input", "changes x in place",
                               "write torch.relu(x - 1), not x.clamp_(...) or x -= ...")
            expected = reference(x, weight)
            if rel_error(got, expected) > TOLERANCE:
                raise _diagnose_range(got, x, weight) or _wrong_values(
                    got, expected, "the penalty is weight * mean(relu(x - 1)^2 + relu(-x)^2).")
        with torch.enable_grad():
            _check_gradients(fn, cases[1], 0, reference)
        result = CheckResult(name, True, None, f"✅ {name}: correct ({len(cases)} cases checked)")
    except _Mistake as m:
        result = CheckResult(name, False, m.mistake, f"❌ {name}: {m.title} — {m.advice}")
    return finish(result, fn, reference, graded)


def _diagnose_range(got, x, weight):
    high, low = torch.relu(x - 1), torch.relu(-x)
    if float(high.abs().sum() + low.abs().sum()) == 0:
        return _Mistake("penalises_inside", "is not zero for an image whose pixels are all inside [0, 1]",
                        "only the part of a pixel beyond 0 or 1 may count: relu(x - 1) and relu(-x).")
    one_side = ("one_sided", "only one side of the range is penalised",
                "penalise pixels above 1 AND below 0: relu(x - 1)^2 + relu(-x)^2.")
    return _match(got, [
        (*one_side, weight * high.pow(2).mean()), (*one_side, weight * low.pow(2).mean()),
        (*_NO_WEIGHT, (high.pow(2) + low.pow(2)).mean()),
        ("sum_instead_of_mean", "uses a sum instead of a mean",
         "take the mean over all elements, so the weight does not depend on the image size.",
         weight * (high.pow(2) + low.pow(2)).sum()),
        ("not_squared", "the excursions are not squared",
         "square them: a squared penalty has a gradient that grows smoothly from 0 at the border.",
         weight * (high + low).mean())])


def _transfer_loop(extractor, content, style, steps, content_layer="relu4_2",
                   style_layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
                   alpha=1.0, beta=30.0, tv_weight=3.0):
    """The loop of notebook 05: targets once, L-BFGS on the pixels only; returns (1, 3, H, W) in [0, 1]."""
    with torch.no_grad():
        content_target = extractor(content)[content_layer]
        style_feats = extractor(style)
        style_targets = [losses.gram_matrix(style_feats[layer]) for layer in style_layers]
    style_weights = losses.normalized_style_weights(beta, style_targets)
    x = content.clone().requires_grad_()
    optimizer = torch.optim.LBFGS([x], max_iter=steps, max_eval=steps, tolerance_grad=0, tolerance_change=0,
                                  history_size=50)

    def closure():
        optimizer.zero_grad()
        feats = extractor(x)
        total = (losses.normalized_content_loss(alpha, feats[content_layer], content_target)
                 + losses.style_loss(feats, style_layers, style_targets, style_weights)
                 + losses.normalized_tv_loss(x, tv_weight))
        total.backward()
        return total

    optimizer.step(closure)
    return x.detach().clamp(0, 1)


_transfer_loop.__name__ = _transfer_loop.__qualname__ = "transfer_loop"


class _TinyExtractor(torch.nn.Module):
    """Two small random convolutions standing in for VGG: fast, and it counts what it is called on.

    Its weights require gradients (as an unfrozen network's would), so targets that are not
    detached carry a graph back into it.
    """

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(_SEED)
        self.conv1 = torch.nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(6, 8, 3, padding=1, stride=2)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(0.4 * torch.randn(p.shape, generator=g))
        self.seen: list[torch.Tensor] = []       # the inputs that did not require gradients

    def forward(self, image):
        if not image.requires_grad:
            self.seen.append(image.detach().clone())
        first = torch.relu(self.conv1(image))
        second = torch.relu(self.conv2(first))
        return {"relu1_1": first, "relu2_1": second}


class _OptimizerSpy:
    """While active: records every optimiser created, and watches L-BFGS's steps and closures."""

    def __init__(self):
        self.optimizers, self.accumulates, self.moved, self.no_gradient = [], None, False, False
        self._last = None

    def __enter__(self):
        spy = self
        self._init, self._step = torch.optim.Optimizer.__init__, torch.optim.LBFGS.step

        def init(optimizer, *args, **kwargs):
            spy._init(optimizer, *args, **kwargs)
            spy.optimizers.append(optimizer)

        def step(optimizer, closure=None):
            params = [p for group in optimizer.param_groups for p in group["params"]]
            if spy._last is not None and not _same(params, spy._last):
                spy.moved = True                      # changed between two steps, behind the optimiser's back
            if spy.accumulates is None and closure is not None:
                spy.accumulates = spy._accumulates(closure, params)

            def watched():
                before = [p.detach().clone() for p in params]
                loss = closure()
                if not _same(params, before):
                    spy.moved = True                  # the closure itself changed the pixels
                return loss

            out = spy._step(optimizer, watched if closure is not None else None)
            spy._last = [p.detach().clone() for p in params]
            return out

        torch.optim.Optimizer.__init__, torch.optim.LBFGS.step = init, step
        return self

    def __exit__(self, *exc):
        torch.optim.Optimizer.__init__, torch.optim.LBFGS.step = self._init, self._step

    def _accumulates(self, closure, params):
        """Call the closure twice at the same pixels: a closure that zeroes gradients gives the same twice."""
        for p in params:
            p.grad = None
        grads = []
        for _ in range(2):
            with torch.enable_grad():
                closure()
            grads.append([None if p.grad is None else p.grad.detach().clone() for p in params])
        if any(g is None for g in grads[0]):
            self.no_gradient = True
            return False
        return all(rel_error(second, 2 * first) < 1e-4 and float(first.abs().max()) > 0
                   for first, second in zip(*grads))


def check_transfer_loop(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(extractor, content, style, steps, content_layer=..., style_layers=..., alpha, beta, tv_weight)``.

    Runs it on a tiny problem (16 x 20 pixels, a two-layer random network, 8 steps) and compares the
    result with the reference loop, watching the optimiser and the network along the way.
    """
    reference, name = _transfer_loop, "transfer_loop"
    g = torch.Generator().manual_seed(_SEED)
    content, style = torch.rand(1, 3, 16, 20, generator=g), torch.rand(1, 3, 18, 14, generator=g)
    settings = dict(content_layer="relu2_1", style_layers=("relu1_1", "relu2_1"), alpha=1.0, beta=30.0,
                    tv_weight=3.0)                # passed by position, in the order of the signature
    steps = 8
    try:
        _not_the_stand_in(fn, reference)
        extractor = _TinyExtractor()
        weights = [p.detach().clone() for p in extractor.parameters()]
        given_content, given_style = content.clone(), style.clone()
        with _OptimizerSpy() as spy, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # e.g. float() of a target that requires grad
            try:
                got = _call(fn, (extractor, given_content, given_style, steps, *settings.values()), "")
            except _Mistake as m:
                if "backward through the graph a second time" in m.title:
                    raise _Mistake("targets_not_detached", "the targets are not detached: the second loss "
                                   "evaluation fails (backward through the graph a second time)",
                                   "compute the targets once under `with torch.no_grad():` (or .detach() "
                                   "them), so that they are constants, not part of the graph.") from None
                raise
        _diagnose_loop(got, spy, extractor, weights, content, style, given_content, given_style, steps)
        reached = _loop_loss(got, content, style, settings)
        target = _loop_loss(reference(_TinyExtractor(), content, style, steps, **settings), content, style,
                            settings)
        start = _loop_loss(content, content, style, settings)
        if not reached <= target + 0.05 * (start - target):
            raise _Mistake("wrong_result", f"the loss of your result is {reached:.4g}; the reference loop "
                           f"reaches {target:.4g} from {start:.4g} in {steps} steps",
                           "start from the content image, add the three terms with alpha, beta and "
                           "tv_weight, and let L-BFGS run `steps` evaluations (max_iter=steps, max_eval=steps).")
        result = CheckResult(name, True, None, f"✅ {name}: correct (a tiny problem, {steps} steps, "
                                               "watched step by step)")
    except _Mistake as m:
        result = CheckResult(name, False, m.mistake, f"❌ {name}: {m.title} — {m.advice}")
    return finish(result, fn, reference, graded)


def _loop_loss(image, content, style, settings):
    """The reference loop's objective at ``image`` (a fresh tiny network, targets from the inputs)."""
    extractor = _TinyExtractor()
    with torch.no_grad():
        content_target = extractor(content)[settings["content_layer"]]
        style_feats = extractor(style)
        targets = [losses.gram_matrix(style_feats[layer]) for layer in settings["style_layers"]]
        feats = extractor(image)
        total = (losses.normalized_content_loss(settings["alpha"], feats[settings["content_layer"]],
                                                content_target)
                 + losses.style_loss(feats, settings["style_layers"], targets,
                                     losses.normalized_style_weights(settings["beta"], targets))
                 + losses.normalized_tv_loss(image, settings["tv_weight"]))
    return float(total)


def _diagnose_loop(got, spy, extractor, weights, content, style, given_content, given_style, steps):
    if not (torch.equal(given_content, content) and torch.equal(given_style, style)):
        raise _Mistake("modifies_input", "changes the content or style image in place",
                       "optimise a copy: x = content.clone().requires_grad_().")
    if not spy.optimizers:
        raise _Mistake("no_optimizer", "creates no optimiser",
                       "make one: torch.optim.LBFGS([x], max_iter=steps, max_eval=steps, ...).")
    if not any(isinstance(o, torch.optim.LBFGS) for o in spy.optimizers):
        raise _Mistake("not_lbfgs", f"uses {type(spy.optimizers[0]).__name__}, not L-BFGS",
                       "use torch.optim.LBFGS with a closure, as described above.")
    network = {id(p) for p in extractor.parameters()}
    optimised = [p for o in spy.optimizers for group in o.param_groups for p in group["params"]]
    if any(id(p) in network for p in optimised) or not _same(list(extractor.parameters()), weights):
        raise _Mistake("optimizes_network", "the network's weights are optimised (or changed)",
                       "give the optimiser only the pixels: torch.optim.LBFGS([x], ...); the network stays frozen.")
    if not any(p.shape == content.shape for p in optimised):
        raise _Mistake("pixels_not_optimized", "the image's pixels are not among the optimised tensors",
                       "x = content.clone().requires_grad_() and torch.optim.LBFGS([x], ...).")
    style_calls = sum(torch.equal(seen, style) for seen in extractor.seen)
    content_calls = sum(torch.equal(seen, content) for seen in extractor.seen)
    if style_calls > 1 or content_calls > 1:
        raise _Mistake("targets_recomputed", f"the style image went through the network {style_calls} times "
                       "(the targets are recomputed inside the closure)",
                       "compute the targets once, before the optimisation, outside the closure.")
    if spy.no_gradient:
        raise _Mistake("no_backward", "the closure leaves no gradient on the pixels",
                       "call total.backward() in the closure before returning the loss.")
    if spy.accumulates:
        raise _Mistake("grad_not_zeroed", "gradients are not zeroed: they pile up from one evaluation "
                       "to the next", "call optimizer.zero_grad() at the start of the closure (L-BFGS "
                       "calls it several times per step).")
    if spy.moved:
        raise _Mistake("clamps_between_steps", "the pixels are changed outside the optimiser (clamped in "
                       "place between or inside L-BFGS steps)", "don't clamp during the optimisation: it "
                       "breaks L-BFGS's model of the loss; clamp once at the end (x.detach().clamp(0, 1)).")
    if got is None:
        raise _Mistake("returned_none", "returns None", "return the optimised image: x.detach().clamp(0, 1).")
    if not isinstance(got, torch.Tensor) or got.shape != content.shape:
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        raise _Mistake("wrong_shape", f"returns {shape}, expected an image of shape {tuple(content.shape)}",
                       "return the optimised image x (detached, clamped).")
    if not torch.isfinite(got).all():
        raise _Mistake("not_finite", "the result contains NaN or inf", "check the loss terms and the weights.")
    if got.requires_grad:
        raise _Mistake("result_requires_grad", "the result still requires gradients",
                       "return x.detach().clamp(0, 1).")
    if float(got.min()) < 0 or float(got.max()) > 1:
        raise _Mistake("not_clamped", "the result has pixels outside [0, 1]", "clamp once at the end: "
                       "x.detach().clamp(0, 1).")


# --- notebook 06: controls ------------------------------------------------------

def _correlated_colours(g, height, width, offset):
    """A random image whose R, G and B are correlated (a non-diagonal colour covariance)."""
    base = torch.rand(1, 3, height, width, generator=g)
    mix = torch.rand(3, 3, generator=g) * 0.4 + torch.eye(3) * 0.3
    return torch.einsum("ij,njhw->nihw", mix, base) + offset


def check_match_histogram(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(style, content)``: the style recoloured to the content's colour mean and covariance."""
    from . import controls
    name, reference = "match_histogram", controls.match_histogram
    g = torch.Generator().manual_seed(_SEED)
    cases = [(_correlated_colours(g, 9, 12, 0.1), _correlated_colours(g, 7, 5, 0.2)),
             (_correlated_colours(g, 6, 6, 0.3) * 0.5, _correlated_colours(g, 10, 8, 0.0))]
    try:
        _not_the_stand_in(fn, reference)
        for style, content in cases:
            given = (style.clone(), content.clone())
            got = _call(fn, given, "")
            if got is not None and not isinstance(got, torch.Tensor):
                raise _Mistake("not_a_tensor", f"returns a {type(got).__name__}, not a tensor",
                               "return a torch.Tensor (no .numpy()): the recoloured style feeds the VGG.")
            got = _to_tensor(got, style)
            if not _same(given, (style, content)):
                which = "style" if not torch.equal(given[0], style) else "content"
                raise _Mistake("modifies_input", f"changes the {which} image it was given",
                               "work on a new tensor (e.g. `style - mean`), not in place.")
            if got.shape != style.shape:
                raise _Mistake("wrong_shape", f"wrong output shape: expected {tuple(style.shape)}, got "
                               f"{tuple(got.shape)}", "return the recoloured style, the same shape as the style.")
            if not torch.isfinite(got).all():
                raise _Mistake("not_finite", "returns NaN or infinite values",
                               "check the square roots: add a small epsilon to the eigenvalues.")
            mean_got, cov_got = controls.colour_stats(got)
            mean_c, cov_c = controls.colour_stats(content)
            mean_err, cov_err = float((mean_got - mean_c).abs().max()), float((cov_got - cov_c).abs().max())
            if max(mean_err, cov_err) > 1e-3:
                raise _diagnose_histogram(got, style, content, mean_err, cov_err)
        result = CheckResult(name, True, None, f"✅ {name}: the colour mean and covariance match the content's "
                             f"({len(cases)} cases checked)")
    except _Mistake as m:
        result = CheckResult(name, False, m.mistake, f"❌ {name}: {m.title} — {m.advice}")
    return finish(result, fn, reference, graded)


def _diagnose_histogram(got, style, content, mean_err, cov_err):
    from . import controls
    mean_s, cov_s = controls.colour_stats(style)
    mean_c, cov_c = controls.colour_stats(content)
    centred = style.double() - mean_s.view(1, 3, 1, 1)

    def mapped(matrix, shift=mean_c):
        return torch.einsum("ij,njhw->nihw", matrix, centred) + shift.view(1, 3, 1, 1)

    root, inv_root = controls._sqrtm(cov_c), controls._sqrtm(cov_s, inverse=True)
    per_channel = torch.diag(cov_c.diagonal().sqrt() / cov_s.diagonal().sqrt())
    candidates = [
        ("clamped", "the statistics are slightly off because the result is clipped to [0, 1]",
         "leave the values unclipped (clip only to display the image).", mapped(root @ inv_root).clamp(0, 1)),
        ("mean_only", "only the colour mean moved; the spread is still the style's",
         "also map the covariance: multiply the centred colours by C_content^(1/2) C_style^(-1/2).",
         mapped(torch.eye(3, dtype=torch.float64))),
        ("per_channel", "each channel's spread matches, but not the correlations between channels",
         "use the 3x3 matrix square roots of the covariances, not per-channel standard deviations.",
         mapped(per_channel)),
        ("no_square_root", "the matrix lacks its square roots (C_content C_style^-1)",
         "use C_content^(1/2) C_style^(-1/2): the map is applied once but the covariance picks it up twice.",
         mapped(cov_c @ torch.linalg.inv(cov_s))),
        ("swapped", "content and style are swapped in the matrix",
         "the matrix is C_content^(1/2) C_style^(-1/2) (square root of the target, inverse root of the source).",
         mapped(controls._sqrtm(cov_s) @ controls._sqrtm(cov_c, inverse=True))),
        ("mean_not_removed", "the style's mean is not subtracted before the matrix is applied",
         "compute A (x - mean_style) + mean_content.",
         mapped(root @ inv_root) + torch.einsum("ij,j->i", root @ inv_root, mean_s).view(1, 3, 1, 1)),
    ]
    found = _match(got.double(), candidates)
    if found:
        return found
    return _Mistake("wrong_statistics", f"wrong colour statistics (mean off by {mean_err:.2g}, covariance off by "
                    f"{cov_err:.2g}; both should be < 1e-3)", "compare your code with the formula above, step by step.")


def check_guided_gram(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(features, mask)``: (N, C, H, W) and (N or 1, 1, H, W) -> (N, C, C), the region's Gram matrix."""
    from . import controls
    name, reference = "guided_gram", controls.guided_gram
    g = torch.Generator().manual_seed(_SEED)
    binary = (torch.rand(2, 1, 5, 4, generator=g) > 0.5).float()
    binary[:, :, 0, 0] = 1
    cases = [(torch.randn(2, 3, 5, 4, generator=g), binary),
             (torch.randn(1, 4, 3, 6, generator=g), torch.rand(1, 1, 3, 6, generator=g)),
             (torch.randn(3, 2, 4, 4, generator=g), torch.ones(1, 1, 4, 4))]
    try:
        _not_the_stand_in(fn, reference)
        for features, mask in cases:
            expected = reference(features, mask)
            given = (features.clone(), mask.clone())
            got = _to_tensor(_call(fn, given, ""), expected)
            if not _same(given, (features, mask)):
                raise _Mistake("modifies_input", "changes its features or its mask in place",
                               "write m = mask * ... or F = features * mask, which make new tensors.")
            if got.shape != expected.shape:
                raise _Mistake("wrong_shape", f"wrong output shape: expected {tuple(expected.shape)}, got "
                               f"{tuple(got.shape)}", "return one C x C matrix per batch item, as gram_matrix does.")
            if not torch.isfinite(got).all():
                raise _Mistake("not_finite", "returns NaN or infinite values", "check the division by the area.")
            if rel_error(got, expected) > TOLERANCE:
                raise _diagnose_guided(got, expected, features, mask)
        _check_gradients(fn, cases[1], 0, reference)
        result = CheckResult(name, True, None, f"✅ {name}: correct ({len(cases)} cases checked)")
    except _Mistake as m:
        result = CheckResult(name, False, m.mistake, f"❌ {name}: {m.title} — {m.advice}")
    return finish(result, fn, reference, graded)


def _diagnose_guided(got, expected, features, mask):
    masked = losses.gram_matrix(features * mask)
    square, plain = mask.pow(2).mean(dim=(1, 2, 3)).view(-1, 1, 1), mask.mean(dim=(1, 2, 3)).view(-1, 1, 1)
    n, c, h, w = features.shape
    candidates = [
        ("no_area", "the Gram matrix is not divided by the region's share of the image",
         "divide by mean(m²): otherwise a small region gives a small Gram matrix, diluted by the masked-out zeros.",
         masked),
        ("mean_not_square", "divided by mean(m) instead of mean(m²)",
         "the mask multiplies the features, so it enters the Gram matrix twice: divide by mean(m²) "
         "(the two differ only for soft masks).", masked / plain),
        ("whole_batch_area", "the area is averaged over the whole batch",
         "compute mean(m²) for each batch item (mean over dims 1, 2, 3), so every item gets its own area.",
         masked / mask.pow(2).mean() if mask.shape[0] > 1 else None),
        ("unnormalised", "the Gram matrix is not normalised by C*H*W",
         "use gram_matrix(features * mask) with its default normalize=True.", masked * c * h * w / square),
    ]
    return _match(got, candidates) or _wrong_values(got, expected, "G = gram_matrix(F * m) / mean(m²), per item.")


# --- the runner ----------------------------------------------------------------

def _run(name, fn, graded, cases, *, grad_arg, diagnose, check_shape=None, vectorise=None,
         hint=None) -> CheckResult:
    reference = getattr(losses, name)
    notes, extra = (), ""
    try:
        _not_the_stand_in(fn, reference)
        for args in cases:
            with torch.no_grad():
                expected = reference(*args)
            learner_args = _clone(args)
            got = _to_tensor(_call(fn, learner_args, ""), expected)
            (check_shape or _scalar_shape)(got, expected, args)
            if got.dtype != expected.dtype:
                raise _Mistake("wrong_dtype", f"returns {got.dtype}, expected {expected.dtype}",
                               "keep everything in float32 (no .double(), no dtype=torch.float64).")
            if not torch.isfinite(got).all():
                raise _Mistake("not_finite", "returns NaN or infinite values",
                               "look for a division by zero, a log or square root of a negative number, or an "
                               "uninitialised tensor (torch.empty).")
            if not _same(learner_args, args):
                raise _Mistake("modifies_input", "changes its input tensors in place",
                               "don't use in-place operations (x /= ..., x.pow_(2), x[...] = ...) on the "
                               "inputs; write x = x / ... to make a new tensor.")
            if rel_error(got, expected) > TOLERANCE:
                raise diagnose(got, expected, args) or _wrong_values(got, expected, hint)
        with torch.enable_grad():
            _check_gradients(fn, cases[0], grad_arg, reference)
        loops = _loops(fn) if vectorise else []
        if loops:
            notes = ("python_loop",)
            extra = (f"\n💡 works, but vectorise it: your code uses a Python {' and '.join(loops)}; "
                     f"{vectorise}. It is much faster on real images.")
        result = CheckResult(name, True, None, f"✅ {name}: correct ({len(cases)} cases checked){extra}", notes)
    except _Mistake as m:
        result = CheckResult(name, False, m.mistake, f"❌ {name}: {m.title} — {m.advice}")
    return finish(result, fn, reference, graded)


def _stand_in(reference):
    """The reference, marked so that a check can tell it from the learner's own function."""
    @functools.wraps(reference)
    def stand_in(*args, **kwargs):
        return reference(*args, **kwargs)
    stand_in.nst_stand_in = True
    return stand_in


def _not_the_stand_in(fn, reference):
    """A name that an earlier failed check bound to the reference must not pass as the learner's work."""
    if getattr(fn, "nst_stand_in", False):
        raise _Mistake("still_the_reference", "this is still the reference stand-in, not your function",
                       f"run the cell that defines your `{reference.__name__}` again, then this check.")


class _TooSlow(BaseException):
    """Raised inside a learner's function that runs past CHECK_TIME_LIMIT_S (a BaseException, so that a bare
    ``except Exception`` in the learner's code does not swallow it)."""


def _time_limit(fn, seconds: float):
    """A trace function that stops ``fn`` after ``seconds`` (any platform): at any call it makes, and at every
    line of the file it was defined in (a notebook cell), where a loop that never ends would spin."""
    end, home = time.monotonic() + seconds, getattr(getattr(fn, "__code__", None), "co_filename", None)

    def on_line(frame, event, arg):
        if time.monotonic() > end:
            raise _TooSlow
        return on_line

    def on_call(frame, event, arg):
        if time.monotonic() > end:
            raise _TooSlow
        return on_line if frame.f_code.co_filename == home else None
    return on_call


@contextlib.contextmanager
def _deadline(fn, seconds: float):
    """Raise _TooSlow in ``fn`` after ``seconds``: by a timer signal where there is one (no cost), else by tracing."""
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        def stop(signum, frame):
            raise _TooSlow
        previous, pending = signal.signal(signal.SIGALRM, stop), signal.setitimer(signal.ITIMER_REAL, seconds)
        start = time.monotonic()
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            if pending[0]:  # someone else's timer was running: let it go on
                signal.setitimer(signal.ITIMER_REAL, max(pending[0] - (time.monotonic() - start), 1e-3), pending[1])
    else:
        previous = sys.gettrace()
        sys.settrace(_time_limit(fn, seconds))
        try:
            yield
        finally:
            sys.settrace(previous)


def _call(fn, args, when):
    try:
        with _deadline(fn, CHECK_TIME_LIMIT_S), torch.enable_grad():
            return fn(*args)
    except _TooSlow:
        raise _Mistake("too_slow", f"did not return within {CHECK_TIME_LIMIT_S:g} s{when}",
                       "look for a loop that never ends (a `while` whose condition stays true) or one that "
                       "runs far too often; the check's inputs are tiny, so a right answer takes milliseconds."
                       ) from None
    except NotImplementedError:
        raise _Mistake("not_implemented", "not written yet",
                       "replace `raise NotImplementedError()` with your code.") from None
    except Exception as error:  # noqa: BLE001 - we report any error of the learner's code
        where = _error_line(fn, error)
        advice = "fix this error first."
        if isinstance(error, NameError):
            advice = "a NameError usually means a typo in a variable name; " + advice
        raise _Mistake("exception", f"raises {type(error).__name__}: {error}{where}{when}", advice) from None


def _error_line(fn, error) -> str:
    code = getattr(fn, "__code__", None)
    frames = [f for f in traceback.extract_tb(error.__traceback__) if code and f.filename == code.co_filename]
    return f" (at `{frames[-1].line}`)" if frames and frames[-1].line else ""


def _to_tensor(got, expected):
    if got is None:
        raise _Mistake("returned_none", "returns None", "add a `return` statement at the end.")
    if isinstance(got, torch.Tensor):
        _same_device(got, expected)
        return got.detach()
    try:  # a Python number or a NumPy array: compare the values, the gradient check will complain
        return torch.as_tensor(got).to(expected.dtype)
    except (TypeError, ValueError, RuntimeError):
        raise _Mistake("not_a_tensor", f"returns a {type(got).__name__}, not a tensor",
                       "return a torch.Tensor.") from None


def _same_device(got, expected):
    if isinstance(expected, torch.Tensor) and got.device != expected.device:
        raise _Mistake("wrong_device", f"returns a tensor on {got.device}, but the inputs are on {expected.device}",
                       "keep the result where the inputs are: no .to(...), .cuda(), .cpu() or device=... .")


def _scalar_shape(got, expected, args):
    if got.numel() != 1:
        raise _Mistake("wrong_shape", f"wrong output shape: expected a scalar (shape ()), got {tuple(got.shape)}",
                       "sum over every dimension, the batch included, so that the loss is one number.")


def _gram_shape(got, expected, args):
    n, c, h, w = args[0].shape
    if got.shape == expected.shape:
        return
    if n > 1 and tuple(got.shape) in [(c, c), (1, c, c)]:
        raise _first_item_only()
    advice = "return a tensor of shape (N, C, C): one C x C matrix per batch item."
    if tuple(got.shape[-2:]) == (h * w, h * w):
        advice = "you computed F^T F (positions x positions); the Gram matrix is F F^T (channels x channels)."
    raise _Mistake("wrong_shape", f"wrong output shape: expected {tuple(expected.shape)}, got {tuple(got.shape)}",
                   advice)


def _first_item_only():
    return _Mistake("first_item_only", "only the first batch item is right",
                    "a `return` inside the loop over the batch stops after item 0; compute every item "
                    "(better: all at once with torch.bmm) and return after the loop.")


def _wrong_values(got, expected, hint):
    message = f"wrong values (rel_error {rel_error(got, expected):.2g}, should be < {TOLERANCE:g})"
    return _Mistake("wrong_values", message, hint or "compare your code with the formula above, term by term.")


def _check_gradients(fn, args, grad_arg, reference):
    leaves = _clone(args[grad_arg], requires_grad=True)
    others = _clone(args)  # the learner gets copies: a change in place must not reach the reference's inputs
    learner_args = others[:grad_arg] + (leaves,) + others[grad_arg + 1:]
    got = _call(fn, learner_args, " when the inputs require gradients")
    if not _same(learner_args, args):
        raise _Mistake("modifies_input", "changes its input tensors in place",
                       "don't use in-place operations (x /= ..., x.zero_(), x[...] = ..., list.append) on the "
                       "inputs; write x = x / ... to make a new tensor.")
    if isinstance(got, torch.Tensor):
        _same_device(got, args[grad_arg] if isinstance(args[grad_arg], torch.Tensor) else None)
    args = _clone(args)
    found = _source_attributes(fn, {"detach", "numpy", "item", "tolist", "data", "no_grad"})
    advice = ("use only torch operations on the tensors so autograd can follow them"
              + (f" (remove {', '.join('.' + a for a in found)})" if found else "") + ".")
    if not isinstance(got, torch.Tensor) or got.grad_fn is None:
        raise _Mistake("not_differentiable", "the result is not differentiable (no grad_fn)", advice)
    ref_leaves = _clone(args[grad_arg], requires_grad=True)
    expected = reference(*(args[:grad_arg] + (ref_leaves,) + args[grad_arg + 1:]))
    probe = torch.randn(expected.shape, generator=torch.Generator().manual_seed(_SEED + 1))
    mine, theirs = _tensors(leaves), _tensors(ref_leaves)
    grads = torch.autograd.grad((got * probe).sum(), mine, allow_unused=True)
    ref_grads = torch.autograd.grad((expected * probe).sum(), theirs, allow_unused=True)
    for grad, ref_grad, leaf in zip(grads, ref_grads, mine):
        zero = torch.zeros_like(leaf)
        if rel_error(zero if grad is None else grad, zero if ref_grad is None else ref_grad) > 1e-4:
            raise _Mistake("not_differentiable", "gradients do not flow through every part of the result",
                           advice)


# --- naming the mistakes ----------------------------------------------------------

def _match(got, candidates):
    """The first (mistake, title, advice) whose candidate value equals ``got``."""
    for mistake, title, advice, value in candidates:
        if value is not None and rel_error(got, value) < 1e-4:
            return _Mistake(mistake, title, advice)
    return None


_NOT_SQUARED = ("not_squared", "the differences are not squared",
                "square the differences before summing: (a - b).pow(2) or (a - b) ** 2, not abs() or a norm.")
_MEAN = ("mean_instead_of_sum", "uses a mean instead of a sum",
         "this loss is a plain sum over all elements: use .sum(), not .mean().")
_NO_WEIGHT = ("missing_weight", "the weight is missing", "multiply the sum by the weight argument.")


def _diagnose_content(got, expected, args):
    w, current, original = args
    d = current - original
    return _match(got, [(*_NO_WEIGHT, d.pow(2).sum()), (*_MEAN, w * d.pow(2).mean()),
                        (*_NOT_SQUARED, w * d.abs().sum()), (*_NOT_SQUARED, w * d.sum()),
                        (*_NOT_SQUARED, w * d.norm())])


def _diagnose_style(got, expected, args):
    feats, layers, targets, weights = args
    grams = [losses.gram_matrix(feats[layer]) for layer in layers]

    def total(term, use_weights=True, against=targets):
        if against is None:
            return None
        return sum((w if use_weights else 1.0) * term(g - a) for g, a, w in zip(grams, against, weights))

    squared = lambda d: d.pow(2).sum()  # noqa: E731
    by_layer = None  # style_targets[layer] instead of style_targets[i], when that happens to run
    if all(isinstance(layer, int) and 0 <= layer < len(targets) for layer in layers):
        by_layer = [targets[layer] for layer in layers]
        if any(t.shape[-2:] != g.shape[-2:] for t, g in zip(by_layer, grams)):
            by_layer = None
    first = ("first_layer_only", "only the first style layer is used",
             "sum the weighted terms of all layers; don't return inside the loop.")
    target_advice = "compare the Gram matrix of feats[style_layers[i]] with style_targets[i] (the same i)."
    return _match(got, [
        ("missing_layer_weights", "the layer weights are missing",
         "multiply each layer's term by its weight style_weights[i].", total(squared, use_weights=False)),
        (*first, weights[0] * squared(grams[0] - targets[0])), (*first, squared(grams[0] - targets[0])),
        (*_NOT_SQUARED, total(lambda d: d.abs().sum())), (*_NOT_SQUARED, total(lambda d: d.sum())),
        (*_NOT_SQUARED, total(lambda d: d.norm())), (*_MEAN, total(lambda d: d.pow(2).mean())),
        ("wrong_target", "compares against the wrong target", target_advice, total(squared, against=by_layer)),
        ("wrong_target", "does not subtract the target", target_advice,
         total(squared, against=[torch.zeros_like(t) for t in targets]))])


def _diagnose_tv(got, expected, args):
    img, w = args
    dv, dh = img[:, :, 1:, :] - img[:, :, :-1, :], img[:, :, :, 1:] - img[:, :, :, :-1]
    sv, sh = dv.pow(2).sum(), dh.pow(2).sum()
    one = ("one_direction", "only one direction is counted",
           "add the squared differences between vertical neighbours AND between horizontal neighbours.")
    first = None if img.shape[0] == 1 else losses.tv_loss(img[:1], w)
    return _match(got, [(*one, w * sv), (*one, w * sh), (*_NO_WEIGHT, sv + sh),
                        (*_NOT_SQUARED, w * (dv.abs().sum() + dh.abs().sum())),
                        (*_NOT_SQUARED, w * (dv.sum() + dh.sum())),
                        (*_MEAN, w * (dv.pow(2).mean() + dh.pow(2).mean())), (*_MEAN, w * (sv + sh) / img.numel()),
                        ("first_item_only", "only the first batch item is counted",
                         "sum over the whole batch (all N images), not img[0] only.", first)])


def _ratio(got, expected):
    """r with got == r * expected, or None when they are not proportional."""
    r = float((got * expected).sum() / expected.pow(2).sum().clamp_min(1e-30))
    return r if rel_error(got, r * expected) < 1e-4 else None


def _diagnose_gram(got, expected, args):
    features, normalize = args
    n, c, h, w = features.shape
    ratios = [_ratio(got[i], expected[i]) for i in range(n)]
    close = lambda r, target: r is not None and abs(r / target - 1) < 1e-3  # noqa: E731
    if n > 1 and close(ratios[0], 1) and not all(close(r, 1) for r in ratios[1:]):
        return _first_item_only()
    if None in ratios:
        return None
    if not all(close(r, ratios[0]) for r in ratios):
        powers = [torch.log(torch.tensor(r)) / torch.log(torch.tensor(1.0 / (c * h * w))) for r in ratios]
        if normalize and all(abs(p - round(float(p))) < 1e-3 for p in powers):
            return _Mistake("normalized_in_loop", "the batch items are normalised different numbers of times",
                            "divide by C*H*W once, after the loop (or better, without a loop), not the "
                            "whole tensor inside the loop.")
        return None
    r = ratios[0]
    if not normalize:
        return _Mistake("ignores_normalize_false", "divides even when normalize=False",
                        "divide by C*H*W only `if normalize:`.")
    named = [(c * h * w, "not_normalized", "not normalised", "with normalize=True divide by C*H*W."),
             (c, "normalized_by_hw", "divided by H*W only", "divide by C*H*W: the channels count too."),
             (h * w, "normalized_by_c", "divided by C only", "divide by C*H*W: the positions count too."),
             (1 / (c * h * w), "normalized_twice", "divided by C*H*W twice", "divide by C*H*W once.")]
    for factor, mistake, title, advice in named:
        if close(r, factor):
            return _Mistake(mistake, f"{title} (every entry is {factor:.4g} times too large)" if factor > 1
                            else f"{title} (every entry is {1 / factor:.4g} times too small)", advice)
    return _Mistake("wrong_scale", f"off by a constant factor (every entry is {r:.4g} times the expected value)",
                    "divide by C*H*W (and only when normalize=True).")


# --- small helpers ---------------------------------------------------------------------

def _clone(obj, requires_grad=False):
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone().requires_grad_(requires_grad)
    if isinstance(obj, dict):
        return {k: _clone(v, requires_grad) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_clone(v, requires_grad) for v in obj)
    return obj


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        return [obj]
    values = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else []
    return [t for v in values for t in _tensors(v)]


def _same(a, b) -> bool:
    """Whether ``a`` still equals ``b``: tensors, numbers and the lists and dicts holding them."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape and \
            torch.equal(a.detach(), b.detach())
    if isinstance(a, dict) or isinstance(b, dict):
        return isinstance(a, dict) and isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b) and \
            all(_same(x, y) for x, y in zip(a, b))
    return a is b or a == b


def _tree(fn):
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return None


def _loops(fn) -> list[str]:
    """Kinds of Python loops in the source of ``fn``: "for loop", "while loop", "comprehension"."""
    kinds = {ast.For: "`for` loop", ast.While: "`while` loop", ast.comprehension: "comprehension"}
    tree = _tree(fn)
    return sorted({kinds[type(node)] for node in (ast.walk(tree) if tree else []) if type(node) in kinds})


def _source_attributes(fn, names) -> list[str]:
    tree = _tree(fn)
    nodes = ast.walk(tree) if tree else []
    return sorted({n.attr for n in nodes if isinstance(n, ast.Attribute) and n.attr in names})
