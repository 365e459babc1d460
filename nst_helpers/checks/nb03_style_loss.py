"""Checks of notebook 03 (style loss): ``style_loss`` and the per-layer style weights."""

from __future__ import annotations

import torch

from .. import losses
from .compare import compare_loss, clone, same
from .engine import (MEAN, NOT_SQUARED, SEED, TOLERANCE, CheckResult, Mistake, call, match,
                     rel_error, run_check, wrong_values)


def check_style_loss(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(feats, style_layers, style_targets, style_weights)`` -> scalar tensor (notebook 03)."""
    g = torch.Generator().manual_seed(SEED)

    def target(shape):
        return losses.gram_matrix(torch.randn(shape, generator=g))

    feats_dict = {name: torch.randn(shape, generator=g) for name, shape in
                  [("relu1_1", (1, 3, 6, 5)), ("relu2_1", (1, 5, 4, 3)), ("relu3_1", (1, 6, 2, 3)),
                   ("relu4_2", (1, 6, 2, 3))]}
    case_dict = (feats_dict, ["relu1_1", "relu3_1", "relu2_1"],
                 [target((1, 3, 6, 5)), target((1, 6, 2, 3)), target((1, 5, 4, 3))], [0.7, 3.0, 12.0])
    feats_list = [torch.randn(shape, generator=g) for shape in [(2, 4, 3, 5), (2, 4, 5, 2), (2, 6, 3, 3)]]
    case_list = (feats_list, [1, 0], [target((1, 4, 5, 2)), target((1, 4, 3, 5))], [4.0, 0.25])
    return compare_loss("style_loss", fn, graded, [case_dict, case_list], grad_arg=0, diagnose=_diagnose_style,
                hint="style_loss uses your gram_matrix: make sure check_gram_matrix passes first.")


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
    return match(got, [
        ("missing_layer_weights", "the layer weights are missing",
         "multiply each layer's term by its weight style_weights[i].", total(squared, use_weights=False)),
        (*first, weights[0] * squared(grams[0] - targets[0])), (*first, squared(grams[0] - targets[0])),
        (*NOT_SQUARED, total(lambda d: d.abs().sum())), (*NOT_SQUARED, total(lambda d: d.sum())),
        (*NOT_SQUARED, total(lambda d: d.norm())), (*MEAN, total(lambda d: d.pow(2).mean())),
        ("wrong_target", "compares against the wrong target", target_advice, total(squared, against=by_layer)),
        ("wrong_target", "does not subtract the target", target_advice,
         total(squared, against=[torch.zeros_like(t) for t in targets]))])


def check_normalized_style_weights(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(style_weight, style_targets)`` -> one weight per layer, w_l = style_weight / (L * sum A_l^2).

    Introduced in notebook 03.
    """
    reference = losses.normalized_style_weights
    name = "normalized_style_weights"
    g = torch.Generator().manual_seed(SEED)
    cases = [(30.0, [losses.gram_matrix(scale * torch.randn(shape, generator=g)) for scale, shape in
                     [(1.0, (1, 3, 5, 4)), (40.0, (1, 6, 3, 3)), (0.2, (1, 4, 2, 5))]]),
             (2.5, [losses.gram_matrix(scale * torch.randn(shape, generator=g)) for scale, shape in
                    [(3.0, (1, 5, 4, 4)), (0.5, (1, 2, 6, 3))]])]
    def body():
        for style_weight, targets in cases:
            given = clone(targets)
            got = call(fn, (style_weight, given), "")
            if got is None:
                raise Mistake("returned_none", "returns None", "add a `return` statement at the end.")
            try:
                values = [float(w) for w in got]
            except (TypeError, ValueError, RuntimeError):
                raise Mistake("wrong_shape", f"returns {type(got).__name__}, not one number per layer",
                              "return a list with one weight (a float) per style target.") from None
            if len(values) != len(targets):
                raise Mistake("wrong_shape", f"returns {len(values)} weights for {len(targets)} layers",
                              "return one weight per style target, in the same order.")
            if not all(torch.isfinite(torch.tensor(values))):
                raise Mistake("not_finite", "returns NaN or inf", "check for a division by zero.")
            if not same(given, targets):
                raise Mistake("modifies_input", "changes the style targets in place",
                              "compute sums from the targets without writing into them.")
            expected = torch.tensor(reference(style_weight, targets), dtype=torch.float64)
            got_values = torch.tensor(values, dtype=torch.float64)
            if rel_error(got_values, expected) > TOLERANCE:
                raise _diagnose_layer_weights(got_values, style_weight, targets) or wrong_values(
                    got_values, expected, "each layer's term for features of zeros is w_l * sum A_l^2: "
                    "choose w_l so that this is style_weight / L.")
        return f"correct ({len(cases)} cases checked)"
    return run_check(name, fn, reference, graded, body)


def _diagnose_layer_weights(got, style_weight, targets):
    count = len(targets)
    squares = torch.tensor([float(t.double().pow(2).sum()) for t in targets], dtype=torch.float64)
    sums = torch.tensor([float(t.double().sum()) for t in targets], dtype=torch.float64)
    abs_sums = torch.tensor([float(t.double().abs().sum()) for t in targets], dtype=torch.float64)
    sizes = torch.tensor([float(t.numel()) for t in targets], dtype=torch.float64)
    if torch.allclose(got, got[0].expand_as(got), rtol=1e-6):
        return Mistake("same_for_all_layers", "every layer gets the same weight",
                       "the layers' Gram matrices differ in size by orders of magnitude: divide by each "
                       "layer's own sum A_l^2.")
    not_squared = ("not_squared", "divides by a sum that is not a sum of squares",
                   "a layer's term is a sum of SQUARED differences; for features of zeros it is sum A_l^2.")
    return match(got, [
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

