"""The checks of notebook 06: a right answer passes, each usual mistake is named."""

import pytest
import torch

from nst_helpers import checks, controls
from nst_helpers.losses import gram_matrix


def _stats(image):
    pixels = image.reshape(3, -1)
    mean = pixels.mean(dim=1)
    centred = pixels - mean[:, None]
    return mean, centred @ centred.T / pixels.shape[1]


def _map(style, content, matrix_of, shift=True):
    """A (style - mean_s) + mean_c with A = matrix_of(cov_s, cov_c), in float64."""
    style64, content64 = style.double(), content.double()
    mean_s, cov_s = _stats(style64)
    mean_c, cov_c = _stats(content64)
    centred = style64 - mean_s.view(1, 3, 1, 1) if shift else style64
    out = torch.einsum("ij,njhw->nihw", matrix_of(cov_s, cov_c), centred) + mean_c.view(1, 3, 1, 1)
    return out.float()


def _root(cov, power):
    values, vectors = torch.linalg.eigh(cov)
    return vectors @ torch.diag(values.clamp_min(1e-12) ** power) @ vectors.T


def cholesky_match(style, content):
    return _map(style, content, lambda s, c: torch.linalg.cholesky(c) @ torch.linalg.inv(torch.linalg.cholesky(s)))


def symmetric_match(style, content):
    return _map(style, content, lambda s, c: _root(c, 0.5) @ _root(s, -0.5))


def mean_only(style, content):
    return _map(style, content, lambda s, c: torch.eye(3, dtype=torch.float64))


def per_channel(style, content):
    return _map(style, content, lambda s, c: torch.diag((c.diagonal() / s.diagonal()).sqrt()))


def no_square_root(style, content):
    return _map(style, content, lambda s, c: c @ torch.linalg.inv(s))


def swapped(style, content):
    return _map(style, content, lambda s, c: _root(s, 0.5) @ _root(c, -0.5))


def mean_not_removed(style, content):
    return _map(style, content, lambda s, c: _root(c, 0.5) @ _root(s, -0.5), shift=False)


def clamped(style, content):
    return symmetric_match(style, content).clamp(0, 1)


def in_place(style, content):
    out = symmetric_match(style, content)
    style.mul_(0.5)
    return out


def nan_result(style, content):
    return symmetric_match(style, content) * float("nan")


def returns_none(style, content):
    symmetric_match(style, content)


def too_bright(style, content):
    return symmetric_match(style, content) * 1.1


def one_image(style, content):
    return symmetric_match(style, content)[0]


@pytest.mark.parametrize("fn", [symmetric_match, cholesky_match, controls.match_histogram])
def test_match_histogram_accepts_any_right_matrix(fn):
    result = checks.check_match_histogram(fn, graded=False)
    assert result.passed, result.message


@pytest.mark.parametrize("fn, mistake", [
    (mean_only, "mean_only"), (per_channel, "per_channel"), (no_square_root, "no_square_root"),
    (swapped, "swapped"), (mean_not_removed, "mean_not_removed"), (clamped, "clamped"),
    (in_place, "modifies_input"), (nan_result, "not_finite"), (returns_none, "returned_none"),
    (too_bright, "wrong_statistics"), (one_image, "wrong_shape")])
def test_match_histogram_names_the_mistake(fn, mistake, capsys):
    result = checks.check_match_histogram(fn, graded=False)
    assert not result.passed and result.mistake == mistake, result.message
    assert capsys.readouterr().out.count("\n") == 1


def guided(features, mask):
    area = (mask ** 2).mean(dim=(1, 2, 3), keepdim=True).squeeze(-1)
    return gram_matrix(features * mask) / area


def guided_no_area(features, mask):
    return gram_matrix(features * mask)


def guided_mean_not_square(features, mask):
    return gram_matrix(features * mask) / mask.mean(dim=(1, 2, 3)).view(-1, 1, 1)


def guided_batch_area(features, mask):
    return gram_matrix(features * mask) / (mask ** 2).mean()


def guided_unnormalised(features, mask):
    return gram_matrix(features * mask, normalize=False) / (mask ** 2).mean(dim=(1, 2, 3)).view(-1, 1, 1)


def guided_detached(features, mask):
    return guided(features.detach(), mask)


def guided_inf(features, mask):
    return guided(features, mask) / 0.0


def test_guided_gram_passes_the_reference_and_a_right_answer():
    assert checks.check_guided_gram(guided, graded=False).passed
    assert checks.check_guided_gram(controls.guided_gram, graded=False).passed


@pytest.mark.parametrize("fn, mistake", [
    (guided_no_area, "no_area"), (guided_mean_not_square, "mean_not_square"), (guided_batch_area, "whole_batch_area"),
    (guided_unnormalised, "not_normalized"), (guided_detached, "not_differentiable"), (guided_inf, "not_finite"),
    (lambda features, mask: gram_matrix(features)[:1], "wrong_shape")])
def test_guided_gram_names_the_mistake(fn, mistake):
    result = checks.check_guided_gram(fn, graded=False)
    assert not result.passed and result.mistake == mistake, result.message


def test_guided_gram_of_a_full_mask_is_the_gram_matrix():
    features = torch.randn(2, 3, 4, 5)
    assert torch.allclose(controls.guided_gram(features, torch.ones(1, 1, 4, 5)), gram_matrix(features), atol=1e-6)


def test_failed_check_raises_in_grading_mode(monkeypatch):
    monkeypatch.setenv("NST_GRADING", "1")
    with pytest.raises(checks.ExerciseFailed):
        checks.check_guided_gram(guided_no_area)
    with pytest.raises(checks.ExerciseFailed):
        checks.check_match_histogram(mean_only)


# --- changes in place and NumPy results cannot pass --------------------------------------------------------

def match_zeroes_the_content(style, content):
    out = controls.match_histogram(style, content)
    content.zero_()
    return out


def match_numpy(style, content):
    return controls.match_histogram(style, content).numpy()


def guided_zeroes_the_mask(features, mask):
    out = controls.guided_gram(features, mask)
    mask.zero_()
    return out


@pytest.mark.parametrize("check, fn, mistake", [
    (checks.check_match_histogram, match_zeroes_the_content, "modifies_input"),
    (checks.check_match_histogram, match_numpy, "not_a_tensor"),
    (checks.check_guided_gram, guided_zeroes_the_mask, "modifies_input"),
])
def test_changes_in_place_and_numpy_results_are_named(check, fn, mistake):
    result = check(fn, graded=False)
    assert not result and result.mistake == mistake, result.message
