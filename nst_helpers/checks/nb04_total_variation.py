"""Checks of notebook 04 (total-variation loss): ``tv_loss`` and the isotropic TV."""

from __future__ import annotations

import torch

from .. import losses
from .compare import TERM_MISTAKES, compare_gradients, compare_loss, python_loops
from .engine import (SEED, TOLERANCE, CheckResult, Mistake, call, match, rel_error, reports, run_check,
                     scalar_shape, to_tensor, wrong_values)

FIRST_ITEM_ONLY = {"first_item_only": ("only the first batch item is counted",
                                       "sum over the whole batch (all N images), not img[0] only.")}

TV_MISTAKES = TERM_MISTAKES | FIRST_ITEM_ONLY | {
    "one_direction": ("only one direction is counted",
                      "add the squared differences between vertical neighbours AND between horizontal neighbours."),
}

TV_ISOTROPIC_MISTAKES = TERM_MISTAKES.only("missing_weight", "mean_instead_of_sum") | FIRST_ITEM_ONLY | {
    "shape_mismatch": ("the vertical and horizontal differences have different shapes",
                       "crop both to (H-1, W-1) before adding them: img[:, :, 1:, :-1] - img[:, :, :-1, :-1] and "
                       "the same along the last axis."),
    "not_finite": ("returns NaN or inf", "check the square root and its argument."),
    "modifies_input": ("changes img in place", "don't use in-place operations on img."),
    "not_differentiable": ("the result is not differentiable (no grad_fn)", "use only torch operations on img."),
    "eps_not_inside_sqrt/gradient": ("the gradient is NaN where the image is flat",
                                     "sqrt has an infinite slope at 0: add eps INSIDE the square root, "
                                     "(dv**2 + dh**2 + eps).sqrt()."),
    "eps_not_inside_sqrt": ("eps is not inside the square root",
                            "sqrt has an infinite slope at 0, so flat regions give NaN gradients: write "
                            "(dv**2 + dh**2 + eps).sqrt()."),
    "anisotropic": ("adds |dv| + |dh|: that is the anisotropic (L1) TV",
                    "take the length of the gradient vector: sqrt(dv^2 + dh^2 + eps)."),
    "no_square_root": ("the square root is missing (that is the squared TV of the first exercise)",
                       "take the square root of dv^2 + dh^2 + eps at each position."),
    "channels_combined": ("the channels are joined inside one square root",
                          "here each channel has its own term: sum over channels of sqrt(dv^2 + dh^2 + eps)."),
}


@reports(TV_MISTAKES, compare_loss, scalar_shape)
def check_tv_loss(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(img, tv_weight)``: (N, C, H, W) -> scalar tensor (notebook 04)."""
    g = torch.Generator().manual_seed(SEED)
    cases = [(torch.randn(2, 3, 5, 4, generator=g), 0.25), (torch.randn(3, 3, 4, 7, generator=g), 4.0),
             (torch.rand(1, 3, 6, 6, generator=g), 1.5)]
    return compare_loss("tv_loss", fn, graded, cases, grad_arg=0, diagnose=_diagnose_tv, check_shape=scalar_shape,
                        vectorise="subtract shifted slices, e.g. img[:, :, 1:, :] - img[:, :, :-1, :]")


def _diagnose_tv(got, expected, args):
    img, w = args
    dv, dh = img[:, :, 1:, :] - img[:, :, :-1, :], img[:, :, :, 1:] - img[:, :, :, :-1]
    sv, sh = dv.pow(2).sum(), dh.pow(2).sum()
    first = None if img.shape[0] == 1 else losses.tv_loss(img[:1], w)
    return match(got, TV_MISTAKES, [
        ("one_direction", w * sv), ("one_direction", w * sh), ("missing_weight", sv + sh),
        ("not_squared", w * (dv.abs().sum() + dh.abs().sum())), ("not_squared", w * (dv.sum() + dh.sum())),
        ("mean_instead_of_sum", w * (dv.pow(2).mean() + dh.pow(2).mean())),
        ("mean_instead_of_sum", w * (sv + sh) / img.numel()), ("first_item_only", first)])


def tv_isotropic(img: torch.Tensor, tv_weight: float, eps: float = 1e-8) -> torch.Tensor:
    """tv_weight * sum over channels and positions (i < H-1, j < W-1) of sqrt(dv^2 + dh^2 + eps) (notebook 04)."""
    vertical = img[:, :, 1:, :-1] - img[:, :, :-1, :-1]
    horizontal = img[:, :, :-1, 1:] - img[:, :, :-1, :-1]
    return tv_weight * (vertical.pow(2) + horizontal.pow(2) + eps).sqrt().sum()


@reports(TV_ISOTROPIC_MISTAKES, to_tensor, scalar_shape, compare_gradients, wrong_values)
def check_tv_isotropic(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(img, tv_weight, eps=1e-8)``: isotropic TV, sqrt(dv^2 + dh^2 + eps) summed, a scalar tensor.

    Introduced in notebook 04.
    """
    reference, name = tv_isotropic, "tv_isotropic"
    g = torch.Generator().manual_seed(SEED)
    flat = torch.zeros(1, 3, 6, 7)
    flat[:, :, :, 4:] = 0.8                       # flat regions, a vertical and a horizontal edge
    flat[:, :, 3:, :] += 0.1
    cases = [(torch.rand(2, 3, 5, 4, generator=g), 0.25), (torch.rand(1, 3, 4, 7, generator=g), 4.0), (flat, 1.5)]
    def body():
        for img, weight in cases:
            given = img.clone()
            try:
                got = to_tensor(call(fn, (given, weight), ""), img)
            except Mistake as m:
                if "size of tensor" in m.title:
                    raise TV_ISOTROPIC_MISTAKES("shape_mismatch") from None
                raise
            scalar_shape(got, None, None)
            if not torch.isfinite(got).all():
                raise TV_ISOTROPIC_MISTAKES("not_finite")
            if not torch.equal(given, img):
                raise TV_ISOTROPIC_MISTAKES("modifies_input")
            expected = reference(img, weight)
            if rel_error(got, expected) > TOLERANCE:
                raise _diagnose_tv_isotropic(got, img, weight) or wrong_values(
                    got, expected, "per channel and position: sqrt(dv^2 + dh^2 + eps) on the (H-1, W-1) crop.")
        with torch.enable_grad():
            leaf = flat.clone().requires_grad_(True)
            out = call(fn, (leaf, 1.5), " when the input requires gradients")
            if not isinstance(out, torch.Tensor) or out.grad_fn is None:
                raise TV_ISOTROPIC_MISTAKES("not_differentiable")
            grad, = torch.autograd.grad(out, leaf, allow_unused=True)
            if grad is None or not torch.isfinite(grad).all():
                raise TV_ISOTROPIC_MISTAKES("eps_not_inside_sqrt/gradient")
            compare_gradients(fn, cases[0], 0, reference)
        loops = python_loops(fn)
        if not loops:
            return f"correct ({len(cases)} cases checked)"
        return (f"correct ({len(cases)} cases checked)\n💡 works, but vectorise it: your code uses a Python "
                f"{' and '.join(loops)}; subtract shifted slices instead."), ("python_loop",)
    return run_check(name, fn, reference, graded, body)


def _diagnose_tv_isotropic(got, img, weight, eps=1e-8):
    dv = img[:, :, 1:, :-1] - img[:, :, :-1, :-1]
    dh = img[:, :, :-1, 1:] - img[:, :, :-1, :-1]
    full_v, full_h = img[:, :, 1:, :] - img[:, :, :-1, :], img[:, :, :, 1:] - img[:, :, :, :-1]
    magnitude = (dv.pow(2) + dh.pow(2) + eps).sqrt()
    first = None if img.shape[0] == 1 else tv_isotropic(img[:1], weight, eps)
    length = (dv.pow(2) + dh.pow(2)).sqrt()
    return match(got, TV_ISOTROPIC_MISTAKES, [
        ("eps_not_inside_sqrt", weight * length.sum()), ("eps_not_inside_sqrt", weight * (length + eps).sum()),
        ("anisotropic", weight * (dv.abs() + dh.abs()).sum()),
        ("anisotropic", weight * (full_v.abs().sum() + full_h.abs().sum())),
        ("no_square_root", weight * (dv.pow(2) + dh.pow(2)).sum()),
        ("channels_combined", weight * (dv.pow(2).sum(1) + dh.pow(2).sum(1) + eps).sqrt().sum()),
        ("missing_weight", magnitude.sum()), ("mean_instead_of_sum", weight * magnitude.mean()),
        ("first_item_only", first)])
