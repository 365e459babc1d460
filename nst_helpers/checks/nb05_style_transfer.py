"""Checks of notebook 05 (style transfer): the range penalty and the optimisation loop."""

from __future__ import annotations

import warnings

import torch

from .. import losses
from .compare import TERM_MISTAKES, compare_gradients, same
from .engine import (COMMON_MISTAKES, SEED, TOLERANCE, CheckResult, Mistake, Mistakes, call, match, rel_error,
                     reports, run_check, scalar_shape, to_tensor, wrong_values)
from .loop_spy import LOOP_MISTAKES, OptimizerSpy, SpyNet, TinyExtractor

RANGE_MISTAKES = TERM_MISTAKES.only("missing_weight") | {
    "not_finite": ("returns NaN or inf", "use only relu (or clamp), squares and a mean."),
    "modifies_input": ("changes x in place", "write torch.relu(x - 1), not x.clamp_(...) or x -= ..."),
    "penalises_inside": ("is not zero for an image whose pixels are all inside [0, 1]",
                         "only the part of a pixel beyond 0 or 1 may count: relu(x - 1) and relu(-x)."),
    "one_sided": ("only one side of the range is penalised",
                  "penalise pixels above 1 AND below 0: relu(x - 1)^2 + relu(-x)^2."),
    "sum_instead_of_mean": ("uses a sum instead of a mean",
                            "take the mean over all elements, so the weight does not depend on the image size."),
    "not_squared": ("the excursions are not squared",
                    "square them: a squared penalty has a gradient that grows smoothly from 0 at the border."),
}

TRANSFER_MISTAKES = Mistakes({
    "targets_not_detached": ("the targets are not detached: the second loss evaluation fails (backward through "
                             "the graph a second time)",
                             "compute the targets once under `with torch.no_grad():` (or .detach() them), so "
                             "that they are constants, not part of the graph."),
    "wrong_result": ("the loss of your result is {reached:.4g}; the reference loop reaches {target:.4g} from "
                     "{start:.4g} in {steps} steps",
                     "start from the content image, add the three terms with alpha, beta and tv_weight, and let "
                     "L-BFGS run `steps` evaluations (max_iter=steps, max_eval=steps)."),
    "modifies_input": ("changes the content or style image in place",
                       "optimise a copy: x = content.clone().requires_grad_()."),
    "no_optimizer": ("creates no optimiser", "make one: torch.optim.LBFGS([x], max_iter=steps, max_eval=steps, ...)."),
    "not_lbfgs": ("uses {kind}, not L-BFGS", "use torch.optim.LBFGS with a closure, as described above."),
    "no_backward": ("the closure leaves no gradient on the pixels",
                    "call total.backward() in the closure before returning the loss."),
    "clamps_between_steps": ("the pixels are changed outside the optimiser (clamped in place between or inside "
                             "L-BFGS steps)",
                             "don't clamp during the optimisation: it breaks L-BFGS's model of the loss; clamp "
                             "once at the end (x.detach().clamp(0, 1))."),
    "wrong_shape": ("returns {got}, expected an image of shape {expected}",
                    "return the optimised image x (detached, clamped)."),
    "not_finite": ("the result contains NaN or inf", "check the loss terms and the weights."),
    "result_requires_grad": ("the result still requires gradients", "return x.detach().clamp(0, 1)."),
    "not_clamped": ("the result has pixels outside [0, 1]", "clamp once at the end: x.detach().clamp(0, 1)."),
})


@reports(RANGE_MISTAKES, to_tensor, scalar_shape, compare_gradients, wrong_values)
def check_range_penalty(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(x, weight)`` -> weight * mean(relu(x - 1)^2 + relu(-x)^2), a scalar tensor (notebook 05)."""
    reference, name = losses.range_penalty, "range_penalty"
    g = torch.Generator().manual_seed(SEED)
    cases = [(0.1 + 0.8 * torch.rand(1, 3, 4, 4, generator=g), 7.0),     # all inside: must be exactly 0
             (torch.rand(1, 3, 5, 4, generator=g) * 2 - 0.5, 1000.0),
             (torch.rand(2, 3, 4, 6, generator=g) * 1.6 - 0.3, 2.5)]
    def body():
        for x, weight in cases:
            given = x.clone()
            got = to_tensor(call(fn, (given, weight), ""), x)
            scalar_shape(got, None, None)
            if not torch.isfinite(got).all():
                raise RANGE_MISTAKES("not_finite")
            if not torch.equal(given, x):
                raise RANGE_MISTAKES("modifies_input")
            expected = reference(x, weight)
            if rel_error(got, expected) > TOLERANCE:
                raise _diagnose_range(got, x, weight) or wrong_values(
                    got, expected, "the penalty is weight * mean(relu(x - 1)^2 + relu(-x)^2).")
        with torch.enable_grad():
            compare_gradients(fn, cases[1], 0, reference)
        return f"correct ({len(cases)} cases checked)"
    return run_check(name, fn, reference, graded, body)


def _diagnose_range(got, x, weight):
    high, low = torch.relu(x - 1), torch.relu(-x)
    if float(high.abs().sum() + low.abs().sum()) == 0:
        return RANGE_MISTAKES("penalises_inside")
    return match(got, RANGE_MISTAKES, [
        ("one_sided", weight * high.pow(2).mean()), ("one_sided", weight * low.pow(2).mean()),
        ("missing_weight", (high.pow(2) + low.pow(2)).mean()),
        ("sum_instead_of_mean", weight * (high.pow(2) + low.pow(2)).sum()),
        ("not_squared", weight * (high + low).mean())])


def transfer_loop(extractor, content, style, steps, content_layer="relu4_2",
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


@reports(TRANSFER_MISTAKES, LOOP_MISTAKES)
def check_transfer_loop(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(extractor, content, style, steps, content_layer=..., style_layers=..., alpha, beta, tv_weight)``.

    Runs it on a tiny problem (16 x 20 pixels, a two-layer random network, 8 steps) and compares the
    result with the reference loop, watching the optimiser and the network along the way.
    Introduced in notebook 05.
    """
    reference, name = transfer_loop, "transfer_loop"
    g = torch.Generator().manual_seed(SEED)
    content, style = torch.rand(1, 3, 16, 20, generator=g), torch.rand(1, 3, 18, 14, generator=g)
    settings = dict(content_layer="relu2_1", style_layers=("relu1_1", "relu2_1"), alpha=1.0, beta=30.0,
                    tv_weight=3.0)                # passed by position, in the order of the signature
    steps = 8
    def body():
        extractor = SpyNet(TinyExtractor())
        weights = [p.detach().clone() for p in extractor.parameters()]
        given_content, given_style = content.clone(), style.clone()
        with OptimizerSpy() as spy, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # e.g. float() of a target that requires grad
            try:
                got = call(fn, (extractor, given_content, given_style, steps, *settings.values()), "")
            except Mistake as m:
                if "backward through the graph a second time" in m.title:
                    raise TRANSFER_MISTAKES("targets_not_detached") from None
                raise
        _diagnose_loop(got, spy, extractor, weights, content, style, given_content, given_style, steps)
        reached = _loop_loss(got, content, style, settings)
        target = _loop_loss(reference(TinyExtractor(), content, style, steps, **settings), content, style,
                            settings)
        start = _loop_loss(content, content, style, settings)
        if not reached <= target + 0.05 * (start - target):
            raise TRANSFER_MISTAKES("wrong_result", reached=reached, target=target, start=start, steps=steps)
        return f"correct (a tiny problem, {steps} steps, watched step by step)"
    return run_check(name, fn, reference, graded, body)


def _loop_loss(image, content, style, settings):
    """The reference loop's objective at ``image`` (a fresh tiny network, targets from the inputs)."""
    extractor = TinyExtractor()
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
        raise TRANSFER_MISTAKES("modifies_input")
    if not spy.optimizers:
        raise TRANSFER_MISTAKES("no_optimizer")
    if not any(isinstance(o, torch.optim.LBFGS) for o in spy.optimizers):
        raise TRANSFER_MISTAKES("not_lbfgs", kind=type(spy.optimizers[0]).__name__)
    network = {id(p) for p in extractor.parameters()}
    optimised = [p for o in spy.optimizers for group in o.param_groups for p in group["params"]]
    if any(id(p) in network for p in optimised) or not same(list(extractor.parameters()), weights):
        raise LOOP_MISTAKES("network_changed")
    if not any(p.shape == content.shape for p in optimised):
        raise LOOP_MISTAKES("pixels_not_optimised")
    style_calls, content_calls = extractor.calls_on(style), extractor.calls_on(content)
    if style_calls > 1 or content_calls > 1:
        raise LOOP_MISTAKES("targets_recomputed", image="style image", calls=style_calls)
    if spy.no_gradient:
        raise TRANSFER_MISTAKES("no_backward")
    if spy.accumulates:
        raise LOOP_MISTAKES("gradients_not_zeroed")
    if spy.moved:
        raise TRANSFER_MISTAKES("clamps_between_steps")
    if got is None:
        raise COMMON_MISTAKES("returned_none", advice="return the optimised image: x.detach().clamp(0, 1).")
    if not isinstance(got, torch.Tensor) or got.shape != content.shape:
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        raise TRANSFER_MISTAKES("wrong_shape", got=shape, expected=tuple(content.shape))
    if not torch.isfinite(got).all():
        raise TRANSFER_MISTAKES("not_finite")
    if got.requires_grad:
        raise TRANSFER_MISTAKES("result_requires_grad")
    if float(got.min()) < 0 or float(got.max()) > 1:
        raise TRANSFER_MISTAKES("not_clamped")
