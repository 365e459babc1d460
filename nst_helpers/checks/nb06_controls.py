"""Checks of notebook 06 (controls): colour histogram matching and the guided Gram matrix."""

from __future__ import annotations

import torch

from .. import controls, losses
from .compare import compare_gradients, same
from .engine import SEED, TOLERANCE, CheckResult, Mistake, call, match, rel_error, run_check, to_tensor, wrong_values


def _correlated_colours(g, height, width, offset):
    """A random image whose R, G and B are correlated (a non-diagonal colour covariance)."""
    base = torch.rand(1, 3, height, width, generator=g)
    mix = torch.rand(3, 3, generator=g) * 0.4 + torch.eye(3) * 0.3
    return torch.einsum("ij,njhw->nihw", mix, base) + offset


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
                raise Mistake("not_a_tensor", f"returns a {type(got).__name__}, not a tensor",
                              "return a torch.Tensor (no .numpy()): the recoloured style feeds the VGG.")
            got = to_tensor(got, style)
            if not same(given, (style, content)):
                which = "style" if not torch.equal(given[0], style) else "content"
                raise Mistake("modifies_input", f"changes the {which} image it was given",
                              "work on a new tensor (e.g. `style - mean`), not in place.")
            if got.shape != style.shape:
                raise Mistake("wrong_shape", f"wrong output shape: expected {tuple(style.shape)}, got "
                              f"{tuple(got.shape)}", "return the recoloured style, the same shape as the style.")
            if not torch.isfinite(got).all():
                raise Mistake("not_finite", "returns NaN or infinite values",
                              "check the square roots: add a small epsilon to the eigenvalues.")
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
    candidates = [
        ("clamped", "the statistics are slightly off because the result is clipped to [0, 1]",
         "leave the values unclipped (clip only to display the image).", mapped(root @ inv_root).clamp(0, 1)),
        ("mean_only", "only the colour mean moved; the spread is still the style's",
         "also map the covariance: multiply the centred colours by C_content^(1/2) C_style^(-1/2).",
         mapped(torch.eye(3, dtype=torch.float64))),
        ("per_channel", "each channel's spread matches, but not the correlations between channels",
         "use the 3x3 matrix square roots of the covariances, not per-channel standard deviations.",
         mapped(per_channel)),
        ("no_square_root", "the matrix lacks its square roots (C_content C_style^-1)",
         "use C_content^(1/2) C_style^(-1/2): the map is applied once but the covariance picks it up twice.",
         mapped(cov_c @ torch.linalg.inv(cov_s))),
        ("swapped", "content and style are swapped in the matrix",
         "the matrix is C_content^(1/2) C_style^(-1/2) (square root of the target, inverse root of the source).",
         mapped(controls._sqrtm(cov_s) @ controls._sqrtm(cov_c, inverse=True))),
        ("mean_not_removed", "the style's mean is not subtracted before the matrix is applied",
         "compute A (x - mean_style) + mean_content.",
         mapped(root @ inv_root) + torch.einsum("ij,j->i", root @ inv_root, mean_s).view(1, 3, 1, 1)),
    ]
    found = match(got.double(), candidates)
    if found:
        return found
    return Mistake("wrong_statistics", f"wrong colour statistics (mean off by {mean_err:.2g}, covariance off by "
                   f"{cov_err:.2g}; both should be < 1e-3)", "compare your code with the formula above, step by step.")


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
                raise Mistake("modifies_input", "changes its features or its mask in place",
                              "write m = mask * ... or F = features * mask, which make new tensors.")
            if got.shape != expected.shape:
                raise Mistake("wrong_shape", f"wrong output shape: expected {tuple(expected.shape)}, got "
                              f"{tuple(got.shape)}", "return one C x C matrix per batch item, as gram_matrix does.")
            if not torch.isfinite(got).all():
                raise Mistake("not_finite", "returns NaN or infinite values", "check the division by the area.")
            if rel_error(got, expected) > TOLERANCE:
                raise _diagnose_guided(got, expected, features, mask)
        compare_gradients(fn, cases[1], 0, reference)
        return f"correct ({len(cases)} cases checked)"
    return run_check(name, fn, reference, graded, body)


def _diagnose_guided(got, expected, features, mask):
    masked = losses.gram_matrix(features * mask)
    square, plain = mask.pow(2).mean(dim=(1, 2, 3)).view(-1, 1, 1), mask.mean(dim=(1, 2, 3)).view(-1, 1, 1)
    n, c, h, w = features.shape
    candidates = [
        ("no_area", "the Gram matrix is not divided by the region's share of the image",
         "divide by mean(m²): otherwise a small region gives a small Gram matrix, diluted by the masked-out zeros.",
         masked),
        ("mean_not_square", "divided by mean(m) instead of mean(m²)",
         "the mask multiplies the features, so it enters the Gram matrix twice: divide by mean(m²) "
         "(the two differ only for soft masks).", masked / plain),
        ("whole_batch_area", "the area is averaged over the whole batch",
         "compute mean(m²) for each batch item (mean over dims 1, 2, 3), so every item gets its own area.",
         masked / mask.pow(2).mean() if mask.shape[0] > 1 else None),
        ("not_normalized", "the Gram matrix is not normalised by C*H*W",
         "use gram_matrix(features * mask) with its default normalize=True.", masked * c * h * w / square),
    ]
    return match(got, candidates) or wrong_values(got, expected, "G = gram_matrix(F * m) / mean(m²), per item.")

