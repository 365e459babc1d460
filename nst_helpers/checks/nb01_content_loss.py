"""Checks of notebook 01 (content loss): ``content_loss``, and reconstructing an image from one layer."""

from __future__ import annotations

import torch

from .. import losses
from ..vgg import VGGFeatures
from .compare import TERM_MISTAKES, compare_loss
from .engine import (COMMON_MISTAKES, SEED, CheckResult, Mistakes, call, finite, match, reports, run_check,
                     scalar_shape, to_tensor)
from .loop_spy import LOOP_MISTAKES, SpyNet

RECONSTRUCT_MISTAKES = Mistakes({
    "wrong_shape": ("returns shape {got}, expected the image's {expected}",
                    "return the image x, not the loss or the activations."),
    "target_not_from_photo": ("never computes the photo's activations",
                              "the target is net(photo)[layer], computed once before the loop."),
    "starts_from_photo": ("starts from the photo itself",
                          "start from noise (torch.rand with the seed): starting from the answer proves nothing."),
    "returns_photo": ("returns the photo", "return the optimised image x."),
    "image_unchanged": ("the image never changed",
                        "call optimizer.step(closure), and make the closure return the loss after loss.backward()."),
    "not_converged": ("the relative loss only went from {before:.3g} to {after:.3g} in {steps} steps (the reference "
                      "reaches {best:.2g})",
                      "use torch.optim.LBFGS([x], max_iter=steps) and one optimizer.step(closure)."),
})


@reports(TERM_MISTAKES, compare_loss, scalar_shape)
def check_content_loss(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(content_weight, content_current, content_original)`` -> scalar tensor (notebook 01)."""
    g = torch.Generator().manual_seed(SEED)
    cases = [(w, torch.randn(shape, generator=g), torch.randn(shape, generator=g))
             for w, shape in [(0.37, (1, 4, 5, 3)), (2.5, (2, 3, 4, 6))]]
    return compare_loss("content_loss", fn, graded, cases, grad_arg=1, diagnose=_diagnose_content,
                        check_shape=scalar_shape)


def _diagnose_content(got, expected, args):
    w, current, original = args
    d = current - original
    return match(got, TERM_MISTAKES, [("missing_weight", d.pow(2).sum()), ("mean_instead_of_sum", w * d.pow(2).mean()),
                                      ("not_squared", w * d.abs().sum()), ("not_squared", w * d.sum()),
                                      ("not_squared", w * d.norm())])


def reconstruct(net, layer, photo, steps, seed=0):
    """Start from uniform noise and change the pixels with L-BFGS until net(x)[layer] matches net(photo)[layer].

    net: a VGGFeatures that has ``layer``; photo: (1, 3, H, W); steps: loss evaluations.  Returns the image.
    Introduced in notebook 01.
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


@reports(RECONSTRUCT_MISTAKES, LOOP_MISTAKES, to_tensor, finite)
def check_reconstruct(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(net, layer, photo, steps, seed=0)`` on a tiny problem: a random-weight VGG, a 14 x 18 image.

    Introduced in notebook 01.
    """
    layer, steps = "conv2_1", 30
    photo = torch.rand(1, 3, 14, 18, generator=torch.Generator().manual_seed(SEED + 2))

    def body():
        threads = torch.get_num_threads()
        torch.set_num_threads(1)   # a problem this small runs fastest, and steadiest, on one thread
        try:
            return _check_reconstruct_on(fn, layer, steps, photo)
        finally:
            torch.set_num_threads(threads)
    return run_check("reconstruct", fn, reconstruct, graded, body)


def _check_reconstruct_on(fn, layer, steps, photo):
    """The body of check_reconstruct: run ``fn`` on a spy network, then judge what it did."""
    spy = SpyNet(VGGFeatures([layer], weights="random", pooling="avg", device="cpu"))
    weights = [p.detach().clone() for p in spy.parameters()]
    got = call(fn, (spy, layer, photo.clone(), steps), "")
    if got is None:
        raise COMMON_MISTAKES("returned_none", advice="return the optimised image x (x.detach()).")
    got = to_tensor(got, photo)
    if got.shape != photo.shape:
        raise RECONSTRUCT_MISTAKES("wrong_shape", got=tuple(got.shape), expected=tuple(photo.shape))
    finite(got, "the loop (is the loss divided by something that can be 0?)")
    if any(not torch.equal(p.detach(), w) for p, w in zip(spy.parameters(), weights)):
        raise LOOP_MISTAKES("network_changed")
    target_calls = spy.calls_on(photo)
    if target_calls == 0:
        raise RECONSTRUCT_MISTAKES("target_not_from_photo")
    if spy.pixel_calls == 0:
        raise LOOP_MISTAKES("pixels_not_optimised")
    if torch.allclose(spy.first_pixels, photo, atol=1e-3):
        raise RECONSTRUCT_MISTAKES("starts_from_photo")
    if target_calls > 1:
        raise LOOP_MISTAKES("targets_recomputed", image="photo", calls=target_calls)
    if spy.stale_gradient:
        raise LOOP_MISTAKES("gradients_not_zeroed")
    best_image = reconstruct(spy.net, layer, photo, steps)
    with torch.no_grad():
        target = spy.net(photo)[layer]
        before, after, best = [float((spy.net(image)[layer] - target).pow(2).sum() / target.pow(2).sum())
                               for image in (spy.first_pixels, got, best_image)]
    if torch.allclose(got, photo, atol=1e-6):
        raise RECONSTRUCT_MISTAKES("returns_photo")
    if torch.allclose(got, spy.first_pixels):
        raise RECONSTRUCT_MISTAKES("image_unchanged")
    if after > max(10 * best, 0.05 * before):
        raise RECONSTRUCT_MISTAKES("not_converged", before=before, after=after, steps=steps, best=best)
    return (f"correct: on a tiny problem the relative loss went from {before:.3g} to {after:.2g} in {steps} "
            "steps; target computed once, only the pixels optimised, gradients zeroed")

