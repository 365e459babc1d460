"""The checks of notebooks 03-05's new exercises: a wrong implementation per mistake, and the check must name it."""

import pytest
import torch

from nst_helpers import checks, losses

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def mistake_of(check, fn):
    result = check(fn, graded=False)
    assert not result.passed, result.message
    return result.mistake


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


def test_normalized_style_weights_names_changing_the_targets():
    assert mistake_of(checks.check_normalized_style_weights, weights_in_place) == "modifies_input"


# --- notebook 04: tv_isotropic -------------------------------------------------------------------------

def tv_iso_reference(img, tv_weight, eps=1e-8):
    dv = img[:, :, 1:, :-1] - img[:, :, :-1, :-1]
    dh = img[:, :, :-1, 1:] - img[:, :, :-1, :-1]
    return tv_weight * (dv ** 2 + dh ** 2 + eps).sqrt().sum()


def tv_iso_loops(img, tv_weight, eps=1e-8):
    total = torch.zeros(())
    for i in range(img.shape[2] - 1):
        dv = img[:, :, i + 1, :-1] - img[:, :, i, :-1]
        dh = img[:, :, i, 1:] - img[:, :, i, :-1]
        total = total + (dv ** 2 + dh ** 2 + eps).sqrt().sum()
    return tv_weight * total


def tv_iso_uncropped(img, tv_weight, eps=1e-8):
    dv = img[:, :, 1:, :] - img[:, :, :-1, :]
    dh = img[:, :, :, 1:] - img[:, :, :, :-1]
    return tv_weight * (dv ** 2 + dh ** 2 + eps).sqrt().sum()


def tv_iso_eps_outside(img, tv_weight, eps=1e-8):
    dv = img[:, :, 1:, :-1] - img[:, :, :-1, :-1]
    dh = img[:, :, :-1, 1:] - img[:, :, :-1, :-1]
    return tv_weight * ((dv ** 2 + dh ** 2).sqrt() + eps).sum()


def tv_iso_anisotropic(img, tv_weight, eps=1e-8):
    return tv_weight * ((img[:, :, 1:, :] - img[:, :, :-1, :]).abs().sum()
                        + (img[:, :, :, 1:] - img[:, :, :, :-1]).abs().sum())


def tv_iso_squared(img, tv_weight, eps=1e-8):
    dv = img[:, :, 1:, :-1] - img[:, :, :-1, :-1]
    dh = img[:, :, :-1, 1:] - img[:, :, :-1, :-1]
    return tv_weight * (dv ** 2 + dh ** 2).sum()


def tv_iso_colour(img, tv_weight, eps=1e-8):
    dv = img[:, :, 1:, :-1] - img[:, :, :-1, :-1]
    dh = img[:, :, :-1, 1:] - img[:, :, :-1, :-1]
    return tv_weight * (dv.pow(2).sum(1) + dh.pow(2).sum(1) + eps).sqrt().sum()


def tv_iso_no_weight(img, tv_weight, eps=1e-8):
    return tv_iso_reference(img, 1.0, eps)


def tv_iso_mean(img, tv_weight, eps=1e-8):
    dv = img[:, :, 1:, :-1] - img[:, :, :-1, :-1]
    dh = img[:, :, :-1, 1:] - img[:, :, :-1, :-1]
    return tv_weight * (dv ** 2 + dh ** 2 + eps).sqrt().mean()


def tv_iso_first_item(img, tv_weight, eps=1e-8):
    return tv_iso_reference(img[:1], tv_weight, eps)


def tv_iso_nan(img, tv_weight, eps=1e-8):
    return tv_iso_reference(img, tv_weight, eps) * float("nan")


def tv_iso_detached(img, tv_weight, eps=1e-8):
    return tv_iso_reference(img.detach(), tv_weight, eps)


def tv_iso_in_place(img, tv_weight, eps=1e-8):
    value = tv_iso_reference(img, tv_weight, eps)
    img.mul_(1.0001)
    return value


WRONG_TV = {"shape_mismatch": tv_iso_uncropped, "eps_not_inside_sqrt": tv_iso_eps_outside,
            "anisotropic": tv_iso_anisotropic, "no_square_root": tv_iso_squared, "channels_combined": tv_iso_colour,
            "missing_weight": tv_iso_no_weight, "mean_instead_of_sum": tv_iso_mean,
            "first_item_only": tv_iso_first_item, "not_finite": tv_iso_nan, "not_differentiable": tv_iso_detached}


def test_tv_isotropic_passes_the_reference_and_notes_loops():
    assert checks.check_tv_isotropic(tv_iso_reference, graded=False)
    looped = checks.check_tv_isotropic(tv_iso_loops, graded=False)
    assert looped and looped.notes == ("python_loop",)


@pytest.mark.parametrize("mistake", sorted(WRONG_TV))
def test_tv_isotropic_names_each_mistake(mistake):
    assert mistake_of(checks.check_tv_isotropic, WRONG_TV[mistake]) == mistake


def test_tv_isotropic_eps_left_out_is_named():
    def no_eps(img, tv_weight, eps=1e-8):
        return tv_iso_reference(img, tv_weight, 0.0)
    assert mistake_of(checks.check_tv_isotropic, no_eps) == "eps_not_inside_sqrt"


def test_tv_isotropic_names_changing_the_input():
    assert mistake_of(checks.check_tv_isotropic, tv_iso_in_place) == "modifies_input"


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
