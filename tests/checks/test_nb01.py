"""Tests of notebook 01's checks (checks/nb01_content_loss.py)."""

import pytest
import torch

from nst_helpers import checks, losses


def named(check, fn):
    result = check(fn, graded=False)
    assert not result.passed
    return result.mistake


# --- content_loss -------------------------------------------------------------------------


def content_no_weight(w, current, original):
    return (current - original).pow(2).sum()


def content_mean(w, current, original):
    return w * (current - original).pow(2).mean()


def content_abs(w, current, original):
    return w * (current - original).abs().sum()


def content_norm(w, current, original):
    return w * torch.norm(current - original)


def content_item(w, current, original):
    return w * (current - original).pow(2).sum().item()


def content_per_item(w, current, original):
    return w * (current - original).pow(2).sum(dim=(1, 2, 3))


@pytest.mark.parametrize("fn, mistake", [
    (content_no_weight, "missing_weight"), (content_mean, "mean_instead_of_sum"),
    (content_abs, "not_squared"), (content_norm, "not_squared"), (content_item, "not_differentiable"),
    (content_per_item, "wrong_shape"),
])
def test_content_mistakes_are_named(fn, mistake):
    result = checks.check_content_loss(fn)
    assert not result and result.mistake == mistake


# --- notebook 01: the feature-inversion loop --------------------------------------------------------


def good_loop(net, layer, photo, steps, seed=0):
    with torch.no_grad():
        target = net(photo)[layer]
    x = torch.rand(photo.shape, generator=torch.Generator().manual_seed(seed)).requires_grad_(True)
    optimizer = torch.optim.LBFGS([x], max_iter=steps)

    def closure():
        loss = losses.content_loss(1.0, net(x)[layer], target)
        optimizer.zero_grad()           # after the forward pass is fine too
        loss.backward()
        return loss
    optimizer.step(closure)
    return x.detach()


def loop(start="noise", target_inside=False, zero_grad=True, optimise="pixels", step=True, returns="x",
         target_from="photo", divide_by=None):
    """A reconstruction loop with one planted mistake."""
    def fn(net, layer, photo, steps, seed=0):
        with torch.no_grad():
            target = net(photo if target_from == "photo" else torch.zeros_like(photo))[layer]
        noise = torch.rand(photo.shape, generator=torch.Generator().manual_seed(seed))
        x = (photo.clone() if start == "photo" else noise).requires_grad_(True)
        if optimise == "network":
            net.requires_grad_(True)
        params = list(net.parameters()) if optimise == "network" else [x]
        optimizer = torch.optim.LBFGS(params, max_iter=steps)

        def closure():
            if zero_grad:
                optimizer.zero_grad()
            goal = net(photo)[layer].detach() if target_inside else target
            loss = losses.content_loss(1.0, net(x)[layer], goal)
            if divide_by is not None:
                loss = loss / divide_by
            loss.backward()
            return loss
        if step:
            optimizer.step(closure)
        return {"x": x.detach(), "photo": photo, "loss": closure().detach(), "none": None}[returns]
    return fn


def test_a_correct_loop_passes_and_the_reference_passes():
    assert checks.check_reconstruct(good_loop, graded=False).passed
    assert checks.check_reconstruct(checks.reconstruct, graded=False).passed


@pytest.mark.parametrize("mistake, fn", [
    ("targets_recomputed", loop(target_inside=True)),
    ("gradients_not_zeroed", loop(zero_grad=False)),
    ("network_changed", loop(optimise="network")),
    ("starts_from_photo", loop(start="photo")),
    ("image_unchanged", loop(step=False)),
    ("wrong_shape", loop(returns="loss")),
    ("returned_none", loop(returns="none")),
    ("not_finite", loop(divide_by=0.0)),
])
def test_loop_mistakes_are_named(mistake, fn):
    assert named(checks.check_reconstruct, fn) == mistake


def test_a_loop_with_a_target_not_from_the_photo_is_named():
    assert named(checks.check_reconstruct, loop(target_from="zeros")) == "target_not_from_photo"


def test_a_loop_that_returns_the_photo_is_named():
    def cheat(net, layer, photo, steps, seed=0):
        good_loop(net, layer, photo, 2, seed)
        return photo
    assert named(checks.check_reconstruct, cheat) == "returns_photo"


def test_a_loop_that_stops_too_early_is_named():
    def too_short(net, layer, photo, steps, seed=0):
        return good_loop(net, layer, photo, 1, seed)
    assert named(checks.check_reconstruct, too_short) == "not_converged"


def test_a_loop_whose_pixels_never_require_gradients_is_named():
    def frozen(net, layer, photo, steps, seed=0):
        x = torch.rand(photo.shape, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            net(photo)
            net(x)
        return x
    assert named(checks.check_reconstruct, frozen) == "pixels_not_optimised"
