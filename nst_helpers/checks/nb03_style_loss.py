"""Checks of notebook 03 (style loss): ``style_loss`` and the per-layer style weights."""

from __future__ import annotations

import torch

from .. import losses
from .compare import TERM_MISTAKES, clone, compare_loss, same
from .engine import (COMMON_MISTAKES, SEED, TOLERANCE, CheckResult, Mistakes, call, match, rel_error, reports,
                     run_check, scalar_shape, wrong_values)

STYLE_LOSS_MISTAKES = TERM_MISTAKES.only("not_squared", "mean_instead_of_sum") | {
    "missing_layer_weights": ("the layer weights are missing",
                              "multiply each layer's term by its weight style_weights[i]."),
    "first_layer_only": ("only the first style layer is used",
                         "sum the weighted terms of all layers; don't return inside the loop."),
    "wrong_target": ("compares against the wrong target",
                     "compare the Gram matrix of feats[style_layers[i]] with style_targets[i] (the same i)."),
    "wrong_target/not_subtracted": ("does not subtract the target",
                                    "compare the Gram matrix of feats[style_layers[i]] with style_targets[i] (the "
                                    "same i)."),
}

LAYER_WEIGHT_MISTAKES = Mistakes({
    "wrong_shape": ("returns {kind}, not one number per layer",
                    "return a list with one weight (a float) per style target."),
    "wrong_shape/count": ("returns {count} weights for {layers} layers",
                          "return one weight per style target, in the same order."),
    "not_finite": ("returns NaN or inf", "check for a division by zero."),
    "modifies_input": ("changes the style targets in place",
                       "compute sums from the targets without writing into them."),
    "same_for_all_layers": ("every layer gets the same weight",
                            "the layers' Gram matrices differ in size by orders of magnitude: divide by each "
                            "layer's own sum A_l^2."),
    "missing_layer_count": ("the weights are {count} times too large (the 1/L is missing)",
                            "share style_weight among the L layers: divide by L as well."),
    "ignores_style_weight": ("style_weight is not used", "multiply by style_weight."),
    "norm_not_squared": ("divides by the norm of A_l, not its square",
                         "divide by sum A_l^2 (the squared norm), the size of the term itself."),
    "not_squared": ("divides by a sum that is not a sum of squares",
                    "a layer's term is a sum of SQUARED differences; for features of zeros it is sum A_l^2."),
    "by_element_count": ("divides by the number of entries, not by the size of the target",
                         "divide by sum A_l^2: the number of entries does not say how large the values are."),
    "inverted": ("multiplies by sum A_l^2 instead of dividing", "divide by sum A_l^2."),
})


@reports(STYLE_LOSS_MISTAKES, compare_loss, scalar_shape)
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
                        check_shape=scalar_shape,
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
    return match(got, STYLE_LOSS_MISTAKES, [
        ("missing_layer_weights", total(squared, use_weights=False)),
        ("first_layer_only", weights[0] * squared(grams[0] - targets[0])),
        ("first_layer_only", squared(grams[0] - targets[0])),
        ("not_squared", total(lambda d: d.abs().sum())), ("not_squared", total(lambda d: d.sum())),
        ("not_squared", total(lambda d: d.norm())), ("mean_instead_of_sum", total(lambda d: d.pow(2).mean())),
        ("wrong_target", total(squared, against=by_layer)),
        ("wrong_target/not_subtracted", total(squared, against=[torch.zeros_like(t) for t in targets]))])


@reports(LAYER_WEIGHT_MISTAKES, wrong_values)
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
                raise COMMON_MISTAKES("returned_none")
            try:
                values = [float(w) for w in got]
            except (TypeError, ValueError, RuntimeError):
                raise LAYER_WEIGHT_MISTAKES("wrong_shape", kind=type(got).__name__) from None
            if len(values) != len(targets):
                raise LAYER_WEIGHT_MISTAKES("wrong_shape/count", count=len(values), layers=len(targets))
            if not all(torch.isfinite(torch.tensor(values))):
                raise LAYER_WEIGHT_MISTAKES("not_finite")
            if not same(given, targets):
                raise LAYER_WEIGHT_MISTAKES("modifies_input")
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
        return LAYER_WEIGHT_MISTAKES("same_for_all_layers")
    return match(got, LAYER_WEIGHT_MISTAKES, [
        ("missing_layer_count", style_weight / squares), ("ignores_style_weight", 1 / (count * squares)),
        ("norm_not_squared", style_weight / (count * squares.sqrt())),
        ("not_squared", style_weight / (count * abs_sums)), ("not_squared", style_weight / (count * sums)),
        ("by_element_count", style_weight / (count * sizes)), ("inverted", style_weight * squares / count)],
        count=count)
