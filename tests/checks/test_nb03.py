"""Tests of notebook 03's checks (checks/nb03_style_loss.py)."""

import pytest
import torch

from nst_helpers import checks, losses


def mistake_of(check, fn):
    result = check(fn, graded=False)
    assert not result.passed, result.message
    return result.mistake


# --- style_loss -----------------------------------------------------------------------------


def style_no_weights(feats, layers, targets, weights):
    return sum((losses.gram_matrix(feats[layer]) - t).pow(2).sum() for layer, t in zip(layers, targets))


def style_first_layer(feats, layers, targets, weights):
    for i, layer in enumerate(layers):
        return weights[i] * (losses.gram_matrix(feats[layer]) - targets[i]).pow(2).sum()


def style_abs(feats, layers, targets, weights):
    return sum(w * (losses.gram_matrix(feats[layer]) - t).abs().sum()
               for layer, t, w in zip(layers, targets, weights))


def style_mean(feats, layers, targets, weights):
    return sum(w * (losses.gram_matrix(feats[layer]) - t).pow(2).mean()
               for layer, t, w in zip(layers, targets, weights))


def style_target_by_layer(feats, layers, targets, weights):
    total = 0
    for i, layer in enumerate(layers):
        target = targets[layer] if isinstance(layer, int) else targets[i]
        total = total + weights[i] * (losses.gram_matrix(feats[layer]) - target).pow(2).sum()
    return total


def style_no_target(feats, layers, targets, weights):
    return sum(w * losses.gram_matrix(feats[layer]).pow(2).sum() for layer, w in zip(layers, weights))


def style_typo(feats, layers, targets, weights):
    loss = 0
    for i, layer in enumerate(layers):
        loss = loss + weights[i] * (losses.gram_matrix(feats[layer]) - targets[i]).pow(2).sum()
    return los  # noqa: F821 - the bug under test


@pytest.mark.parametrize("fn, mistake", [
    (style_no_weights, "missing_layer_weights"), (style_first_layer, "first_layer_only"),
    (style_abs, "not_squared"), (style_mean, "mean_instead_of_sum"),
    (style_target_by_layer, "wrong_target"), (style_no_target, "wrong_target"), (style_typo, "exception"),
])
def test_style_mistakes_are_named(fn, mistake):
    result = checks.check_style_loss(fn)
    assert not result and result.mistake == mistake


def test_style_loop_over_layers_is_fine():
    assert checks.check_style_loss(losses.style_loss).notes == ()


# --- notebook 03: normalized_style_weights ---------------------------------------------------------

def squares(targets):
    return [float(t.pow(2).sum()) for t in targets]


WRONG_WEIGHTS = {
    "missing_layer_count": lambda w, targets: [w / s for s in squares(targets)],
    "ignores_style_weight": lambda w, targets: [1 / (len(targets) * s) for s in squares(targets)],
    "norm_not_squared": lambda w, targets: [w / (len(targets) * float(t.norm())) for t in targets],
    "not_squared": lambda w, targets: [w / (len(targets) * float(t.abs().sum())) for t in targets],
    "same_for_all_layers": lambda w, targets: [w / len(targets)] * len(targets),
    "by_element_count": lambda w, targets: [w / (len(targets) * t.numel()) for t in targets],
    "inverted": lambda w, targets: [w * s / len(targets) for s in squares(targets)],
    "wrong_shape": lambda w, targets: [w / (len(targets) * s) for s in squares(targets)][:1],
    "returned_none": lambda w, targets: None,
    "not_finite": lambda w, targets: [float("nan")] * len(targets),
    "exception": lambda w, targets: [w / (len(targets) * t.pow(2).sum()) for t in targets[5]],
}


def weights_in_place(w, targets):
    for t in targets:
        t.mul_(2)
    return losses.normalized_style_weights(w, targets)


def test_normalized_style_weights_passes_the_reference_and_tensors():
    assert checks.check_normalized_style_weights(losses.normalized_style_weights, graded=False)
    as_tensor = lambda w, targets: torch.tensor(losses.normalized_style_weights(w, targets))  # noqa: E731
    assert checks.check_normalized_style_weights(as_tensor, graded=False)


@pytest.mark.parametrize("mistake", sorted(WRONG_WEIGHTS))
def test_normalized_style_weights_names_each_mistake(mistake):
    assert mistake_of(checks.check_normalized_style_weights, WRONG_WEIGHTS[mistake]) == mistake


def test_normalized_style_weights_names_a_single_number():
    result = checks.check_normalized_style_weights(lambda w, targets: w / len(targets), graded=False)
    assert result.mistake == "wrong_shape" and "not one number per layer" in result.message


def test_normalized_style_weights_names_changing_the_targets():
    assert mistake_of(checks.check_normalized_style_weights, weights_in_place) == "modifies_input"


# --- a change in place to the weights list is named, not taken for a gradient problem ----------------------

def style_changes_its_weights(feats, layers, targets, weights):
    loss = losses.style_loss(feats, layers, targets, weights)
    weights[0] = 0.0                      # the result is right, but the caller's list is changed
    return loss


def test_a_change_to_the_weights_list_is_named_not_a_gradient_problem():
    result = checks.check_style_loss(style_changes_its_weights, graded=False)
    assert not result and result.mistake == "modifies_input", result.message
