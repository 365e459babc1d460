"""Tests of notebook 04's checks (checks/nb04_total_variation.py)."""

import pytest
import torch

from nst_helpers import checks, losses


def mistake_of(check, fn):
    result = check(fn, graded=False)
    assert not result.passed, result.message
    return result.mistake


# --- tv_loss ----------------------------------------------------------------------------------


def tv_lesson_typo(img, tv_weight):  # the lesson's bug
    loss = tv_weight * ((img[:, :, 1:, :] - img[:, :, :-1, :]).pow(2).sum()
                        + (img[:, :, :, 1:] - img[:, :, :, :-1]).pow(2).sum())
    return los  # noqa: F821 - the bug under test


def tv_vertical_only(img, tv_weight):
    return tv_weight * (img[:, :, 1:, :] - img[:, :, :-1, :]).pow(2).sum()


def tv_no_weight(img, tv_weight):
    return losses.tv_loss(img, 1.0)


def tv_l1(img, tv_weight):
    return tv_weight * ((img[:, :, 1:, :] - img[:, :, :-1, :]).abs().sum()
                        + (img[:, :, :, 1:] - img[:, :, :, :-1]).abs().sum())


def tv_mean(img, tv_weight):
    return tv_weight * ((img[:, :, 1:, :] - img[:, :, :-1, :]).pow(2).mean()
                        + (img[:, :, :, 1:] - img[:, :, :, :-1]).pow(2).mean())


def tv_first_item(img, tv_weight):
    return losses.tv_loss(img[:1], tv_weight)


def tv_loop(img, tv_weight):
    n, c, h, w = img.shape
    total = 0
    for i in range(h - 1):
        total = total + (img[:, :, i + 1, :] - img[:, :, i, :]).pow(2).sum()
    for j in range(w - 1):
        total = total + (img[:, :, :, j + 1] - img[:, :, :, j]).pow(2).sum()
    return tv_weight * total


def tv_half_detached(img, tv_weight):
    vertical = (img[:, :, 1:, :] - img[:, :, :-1, :]).pow(2).sum()
    horizontal = (img.data[:, :, :, 1:] - img.data[:, :, :, :-1]).pow(2).sum()
    return tv_weight * (vertical + horizontal)


@pytest.mark.parametrize("fn, mistake", [
    (tv_lesson_typo, "exception"), (tv_vertical_only, "one_direction"), (tv_no_weight, "missing_weight"),
    (tv_l1, "not_squared"), (tv_mean, "mean_instead_of_sum"), (tv_first_item, "first_item_only"),
    (tv_half_detached, "not_differentiable"),
])
def test_tv_mistakes_are_named(fn, mistake):
    result = checks.check_tv_loss(fn)
    assert not result and result.mistake == mistake


def test_tv_exception_message_shows_type_and_line():
    message = checks.check_tv_loss(tv_lesson_typo).message
    assert "NameError: name 'los' is not defined" in message and "return los" in message


def test_tv_loop_gets_the_vectorise_note():
    result = checks.check_tv_loss(tv_loop)
    assert result.passed and "python_loop" in result.notes and "vectorise" in result.message


def test_half_detached_names_the_culprit():
    assert ".data" in checks.check_tv_loss(tv_half_detached).message


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


def test_tv_isotropic_names_a_nan_gradient_where_the_value_is_right():
    def where_not_zero(img, tv_weight, eps=1e-8):   # the value is right, but torch.where's gradient is NaN at 0
        dv = img[:, :, 1:, :-1] - img[:, :, :-1, :-1]
        dh = img[:, :, :-1, 1:] - img[:, :, :-1, :-1]
        m = dv.pow(2) + dh.pow(2)
        return tv_weight * torch.where(m > 0, m.sqrt(), torch.full_like(m, eps ** 0.5)).sum()
    result = checks.check_tv_isotropic(where_not_zero, graded=False)
    assert result.mistake == "eps_not_inside_sqrt" and "NaN where the image is flat" in result.message


def test_tv_isotropic_names_changing_the_input():
    assert mistake_of(checks.check_tv_isotropic, tv_iso_in_place) == "modifies_input"
