"""Tests of notebook 05's checks (checks/nb05_style_transfer.py)."""

import pytest
import torch

from nst_helpers import checks, losses

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def mistake_of(check, fn):
    result = check(fn, graded=False)
    assert not result.passed, result.message
    return result.mistake


# --- notebook 05: range_penalty ----------------------------------------------------------------------------

def relu(x):
    return torch.relu(x)


WRONG_RANGE = {
    "penalises_inside": lambda x, w: w * (x - 0.5).pow(2).mean(),
    "one_sided": lambda x, w: w * relu(x - 1).pow(2).mean(),
    "missing_weight": lambda x, w: (relu(x - 1).pow(2) + relu(-x).pow(2)).mean(),
    "sum_instead_of_mean": lambda x, w: w * (relu(x - 1).pow(2) + relu(-x).pow(2)).sum(),
    "not_squared": lambda x, w: w * (relu(x - 1) + relu(-x)).mean(),
    "not_finite": lambda x, w: w * (relu(x - 1).pow(2) + relu(-x).pow(2)).mean() / 0.0,
    "not_differentiable": lambda x, w: w * (relu(x - 1).pow(2) + relu(-x).pow(2)).mean().detach(),
    "wrong_shape": lambda x, w: w * (relu(x - 1).pow(2) + relu(-x).pow(2)),
    "modifies_input": lambda x, w: w * (x.clamp_(0, 1) - x).pow(2).mean(),
    "not_implemented": lambda x, w: (_ for _ in ()).throw(NotImplementedError()),
}


def test_range_penalty_passes_the_reference_and_the_clamp_form():
    assert checks.check_range_penalty(losses.range_penalty, graded=False)
    assert checks.check_range_penalty(lambda x, w: w * (x - x.clamp(0, 1)).pow(2).mean(), graded=False)


@pytest.mark.parametrize("mistake", sorted(WRONG_RANGE))
def test_range_penalty_names_each_mistake(mistake):
    assert mistake_of(checks.check_range_penalty, WRONG_RANGE[mistake]) == mistake


# --- notebook 05: transfer_loop -------------------------------------------------------------------------------

def make_loop(*, recompute=False, no_detach=False, no_zero=False, network=False, clamp=False, adam=False,
              from_noise=False, in_place_content=False, keep_grad=False, no_clamp=False, no_return=False,
              no_backward=False, extra_network=False, optimise_style=False):
    """The reference loop with one planted mistake."""
    def loop(extractor, content, style, steps, content_layer="relu4_2", style_layers=STYLE_LAYERS,
             alpha=1.0, beta=30.0, tv_weight=3.0):
        def targets():
            content_target = extractor(content)[content_layer]
            style_feats = extractor(style)
            return content_target, [losses.gram_matrix(style_feats[layer]) for layer in style_layers]

        if no_detach:
            content_target, style_targets = targets()
        else:
            with torch.no_grad():
                content_target, style_targets = targets()
        style_weights = losses.normalized_style_weights(beta, style_targets)
        if from_noise:
            x = torch.rand(content.shape, generator=torch.Generator().manual_seed(1)).requires_grad_()
        elif in_place_content:
            x = content.requires_grad_()
        else:
            x = content.clone().requires_grad_()
        params = list(extractor.parameters()) if network else [x]
        if optimise_style:
            params = [style.clone().requires_grad_()]
        if extra_network:
            for p in extractor.parameters():
                p.requires_grad_(True)
            params = [x] + list(extractor.parameters())
        if adam:
            optimizer = torch.optim.Adam(params, lr=0.02)
        else:
            optimizer = torch.optim.LBFGS(params, max_iter=1 if clamp else steps, max_eval=1 if clamp else steps,
                                          tolerance_grad=0, tolerance_change=0, history_size=50)

        def closure():
            nonlocal content_target, style_targets
            if not no_zero:
                optimizer.zero_grad()
            if recompute:
                with torch.no_grad():
                    content_target, recomputed = targets()
                style_targets[:] = recomputed
            feats = extractor(x)
            total = (losses.normalized_content_loss(alpha, feats[content_layer], content_target)
                     + losses.style_loss(feats, style_layers, style_targets, style_weights)
                     + losses.normalized_tv_loss(x, tv_weight))
            if not no_backward:
                total.backward()
            return total

        if adam:
            for _ in range(steps):
                closure()
                optimizer.step()
        elif clamp:
            for _ in range(steps):
                optimizer.step(closure)
                with torch.no_grad():
                    x.clamp_(0, 1)
        else:
            optimizer.step(closure)
        if no_return:
            return None
        if keep_grad:
            return x
        return x.detach() if no_clamp else x.detach().clamp(0, 1)
    return loop


WRONG_LOOPS = {
    "targets_recomputed": dict(recompute=True), "targets_not_detached": dict(no_detach=True),
    "gradients_not_zeroed": dict(no_zero=True),
    "pixels_not_optimised": dict(optimise_style=True),
    "network_changed": dict(network=True), "clamps_between_steps": dict(clamp=True),
    "not_lbfgs": dict(adam=True), "wrong_result": dict(from_noise=True),
    "modifies_input": dict(in_place_content=True), "result_requires_grad": dict(keep_grad=True),
    "returned_none": dict(no_return=True), "no_backward": dict(no_backward=True),
}


def test_transfer_loop_passes_the_reference_and_an_equivalent_loop():
    assert checks.check_transfer_loop(make_loop(), graded=False)
    assert checks.check_transfer_loop(checks.transfer_loop, graded=False)


@pytest.mark.parametrize("mistake", sorted(WRONG_LOOPS))
def test_transfer_loop_names_each_mistake(mistake):
    assert mistake_of(checks.check_transfer_loop, make_loop(**WRONG_LOOPS[mistake])) == mistake


def test_transfer_loop_names_the_network_added_to_the_pixels():
    assert mistake_of(checks.check_transfer_loop, make_loop(extra_network=True)) == "network_changed"


def test_transfer_loop_names_an_unclamped_result():
    def loop(*args, **kwargs):
        image = make_loop()(*args, **kwargs)
        image[0, 0, 0, 0] = 1.5
        return image
    assert mistake_of(checks.check_transfer_loop, loop) == "not_clamped"


def test_transfer_loop_names_a_loop_without_an_optimiser():
    def no_loop(extractor, content, style, steps, *settings):
        return content.clone()
    assert mistake_of(checks.check_transfer_loop, no_loop) == "no_optimizer"


def test_transfer_loop_names_a_result_of_the_wrong_shape():
    def loop(*args, **kwargs):
        return make_loop()(*args, **kwargs)[0]
    result = checks.check_transfer_loop(loop, graded=False)
    assert result.mistake == "wrong_shape" and "expected an image of shape (1, 3, 16, 20)" in result.message


def test_transfer_loop_names_a_nan_result():
    def loop(*args, **kwargs):
        return make_loop()(*args, **kwargs) * float("nan")
    assert mistake_of(checks.check_transfer_loop, loop) == "not_finite"


def test_transfer_loop_check_leaves_torch_optim_as_it_was():
    init, step = torch.optim.Optimizer.__init__, torch.optim.LBFGS.step
    checks.check_transfer_loop(make_loop(no_detach=True), graded=False)
    assert torch.optim.Optimizer.__init__ is init and torch.optim.LBFGS.step is step


def test_grading_mode_raises_for_the_new_checks(monkeypatch):
    monkeypatch.setenv("NST_GRADING", "1")
    with pytest.raises(checks.ExerciseFailed):
        checks.check_range_penalty(WRONG_RANGE["one_sided"])
    with pytest.raises(checks.ExerciseFailed):
        checks.check_transfer_loop(make_loop(no_zero=True))
