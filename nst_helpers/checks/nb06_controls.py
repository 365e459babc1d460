"""Checks of notebook 06 (controls): colour histogram matching and the guided Gram matrix."""

from __future__ import annotations

import torch

from .. import controls, losses
from .compare import compare_gradients, same
from .engine import (SEED, TOLERANCE, CheckResult, Mistakes, call, match, rel_error, reports, run_check, to_tensor,
                     wrong_values)

HISTOGRAM_MISTAKES = Mistakes({
    "not_a_tensor": ("returns a {kind}, not a tensor",
                     "return a torch.Tensor (no .numpy()): the recoloured style feeds the VGG."),
    "modifies_input": ("changes the {which} image it was given",
                       "work on a new tensor (e.g. `style - mean`), not in place."),
    "wrong_shape": ("wrong output shape: expected {expected}, got {got}",
                    "return the recoloured style, the same shape as the style."),
    "not_finite": ("returns NaN or infinite values", "check the square roots: add a small epsilon to the eigenvalues."),
    "clamped": ("the statistics are slightly off because the result is clipped to [0, 1]",
                "leave the values unclipped (clip only to display the image)."),
    "mean_only": ("only the colour mean moved; the spread is still the style's",
                  "also map the covariance: multiply the centred colours by C_content^(1/2) C_style^(-1/2)."),
    "per_channel": ("each channel's spread matches, but not the correlations between channels",
                    "use the 3x3 matrix square roots of the covariances, not per-channel standard deviations."),
    "no_square_root": ("the matrix lacks its square roots (C_content C_style^-1)",
                       "use C_content^(1/2) C_style^(-1/2): the map is applied once but the covariance picks it up "
                       "twice."),
    "swapped": ("content and style are swapped in the matrix",
                "the matrix is C_content^(1/2) C_style^(-1/2) (square root of the target, inverse root of the "
                "source)."),
    "mean_not_removed": ("the style's mean is not subtracted before the matrix is applied",
                         "compute A (x - mean_style) + mean_content."),
    "wrong_statistics": ("wrong colour statistics (mean off by {mean:.2g}, covariance off by {cov:.2g}; both should "
                         "be < 1e-3)", "compare your code with the formula above, step by step."),
})

GUIDED_GRAM_MISTAKES = Mistakes({
    "modifies_input": ("changes its features or its mask in place",
                       "write m = mask * ... or F = features * mask, which make new tensors."),
    "wrong_shape": ("wrong output shape: expected {expected}, got {got}",
                    "return one C x C matrix per batch item, as gram_matrix does."),
    "not_finite": ("returns NaN or infinite values", "check the division by the area."),
    "no_area": ("the Gram matrix is not divided by the region's share of the image",
                "divide by mean(m²): otherwise a small region gives a small Gram matrix, diluted by the masked-out "
                "zeros."),
    "mean_not_square": ("divided by mean(m) instead of mean(m²)",
                        "the mask multiplies the features, so it enters the Gram matrix twice: divide by mean(m²) "
                        "(the two differ only for soft masks)."),
    "whole_batch_area": ("the area is averaged over the whole batch",
                         "compute mean(m²) for each batch item (mean over dims 1, 2, 3), so every item gets its own "
                         "area."),
    "not_normalized": ("the Gram matrix is not normalised by C*H*W",
                       "use gram_matrix(features * mask) with its default normalize=True."),
})


def _correlated_colours(g, height, width, offset):
    """A random image whose R, G and B are correlated (a non-diagonal colour covariance)."""
    base = torch.rand(1, 3, height, width, generator=g)
    mix = torch.rand(3, 3, generator=g) * 0.4 + torch.eye(3) * 0.3
    return torch.einsum("ij,njhw->nihw", mix, base) + offset


@reports(HISTOGRAM_MISTAKES, to_tensor)
def check_match_histogram(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(style, content)``: the style recoloured to the content's colour mean and covariance (notebook 06)."""
    name, reference = "match_histogram", controls.match_histogram
    g = torch.Generator().manual_seed(SEED)
    cases = [(_correlated_colours(g, 9, 12, 0.1), _correlated_colours(g, 7, 5, 0.2)),
             (_correlated_colours(g, 6, 6, 0.3) * 0.5, _correlated_colours(g, 10, 8, 0.0))]
    def body():
        for style, content in cases:
            given = (style.clone(), content.clone())
            got = call(fn, given, "")
            if got is not None and not isinstance(got, torch.Tensor):
                raise HISTOGRAM_MISTAKES("not_a_tensor", kind=type(got).__name__)
            got = to_tensor(got, style)
            if not same(given, (style, content)):
                which = "style" if not torch.equal(given[0], style) else "content"
                raise HISTOGRAM_MISTAKES("modifies_input", which=which)
            if got.shape != style.shape:
                raise HISTOGRAM_MISTAKES("wrong_shape", expected=tuple(style.shape), got=tuple(got.shape))
            if not torch.isfinite(got).all():
                raise HISTOGRAM_MISTAKES("not_finite")
            mean_got, cov_got = controls.colour_stats(got)
            mean_c, cov_c = controls.colour_stats(content)
            mean_err, cov_err = float((mean_got - mean_c).abs().max()), float((cov_got - cov_c).abs().max())
            if max(mean_err, cov_err) > 1e-3:
                raise _diagnose_histogram(got, style, content, mean_err, cov_err)
        return f"the colour mean and covariance match the content's ({len(cases)} cases checked)"
    return run_check(name, fn, reference, graded, body)


def _diagnose_histogram(got, style, content, mean_err, cov_err):
    mean_s, cov_s = controls.colour_stats(style)
    mean_c, cov_c = controls.colour_stats(content)
    centred = style.double() - mean_s.view(1, 3, 1, 1)

    def mapped(matrix, shift=mean_c):
        return torch.einsum("ij,njhw->nihw", matrix, centred) + shift.view(1, 3, 1, 1)

    root, inv_root = controls._sqrtm(cov_c), controls._sqrtm(cov_s, inverse=True)
    per_channel = torch.diag(cov_c.diagonal().sqrt() / cov_s.diagonal().sqrt())
    return match(got.double(), HISTOGRAM_MISTAKES, [
        ("clamped", mapped(root @ inv_root).clamp(0, 1)), ("mean_only", mapped(torch.eye(3, dtype=torch.float64))),
        ("per_channel", mapped(per_channel)), ("no_square_root", mapped(cov_c @ torch.linalg.inv(cov_s))),
        ("swapped", mapped(controls._sqrtm(cov_s) @ controls._sqrtm(cov_c, inverse=True))),
        ("mean_not_removed",
         mapped(root @ inv_root) + torch.einsum("ij,j->i", root @ inv_root, mean_s).view(1, 3, 1, 1)),
    ]) or HISTOGRAM_MISTAKES("wrong_statistics", mean=mean_err, cov=cov_err)


@reports(GUIDED_GRAM_MISTAKES, to_tensor, compare_gradients, wrong_values)
def check_guided_gram(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(features, mask)``: (N, C, H, W) and (N or 1, 1, H, W) -> (N, C, C), the region's Gram matrix.

    Introduced in notebook 06.
    """
    name, reference = "guided_gram", controls.guided_gram
    g = torch.Generator().manual_seed(SEED)
    binary = (torch.rand(2, 1, 5, 4, generator=g) > 0.5).float()
    binary[:, :, 0, 0] = 1
    cases = [(torch.randn(2, 3, 5, 4, generator=g), binary),
             (torch.randn(1, 4, 3, 6, generator=g), torch.rand(1, 1, 3, 6, generator=g)),
             (torch.randn(3, 2, 4, 4, generator=g), torch.ones(1, 1, 4, 4))]
    def body():
        for features, mask in cases:
            expected = reference(features, mask)
            given = (features.clone(), mask.clone())
            got = to_tensor(call(fn, given, ""), expected)
            if not same(given, (features, mask)):
                raise GUIDED_GRAM_MISTAKES("modifies_input")
            if got.shape != expected.shape:
                raise GUIDED_GRAM_MISTAKES("wrong_shape", expected=tuple(expected.shape), got=tuple(got.shape))
            if not torch.isfinite(got).all():
                raise GUIDED_GRAM_MISTAKES("not_finite")
            if rel_error(got, expected) > TOLERANCE:
                raise _diagnose_guided(got, expected, features, mask)
        compare_gradients(fn, cases[1], 0, reference)
        return f"correct ({len(cases)} cases checked)"
    return run_check(name, fn, reference, graded, body)


def _diagnose_guided(got, expected, features, mask):
    masked = losses.gram_matrix(features * mask)
    square, plain = mask.pow(2).mean(dim=(1, 2, 3)).view(-1, 1, 1), mask.mean(dim=(1, 2, 3)).view(-1, 1, 1)
    n, c, h, w = features.shape
    return match(got, GUIDED_GRAM_MISTAKES, [
        ("no_area", masked), ("mean_not_square", masked / plain),
        ("whole_batch_area", masked / mask.pow(2).mean() if mask.shape[0] > 1 else None),
        ("not_normalized", masked * c * h * w / square),
    ]) or wrong_values(got, expected, "G = gram_matrix(F * m) / mean(m²), per item.")
