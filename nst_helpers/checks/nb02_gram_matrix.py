"""Checks of notebook 02 (the Gram matrix): ``gram_matrix``, and comparing the textures of two images."""

from __future__ import annotations

import torch

from .. import losses
from .compare import compare_loss
from .engine import (SEED, CheckResult, Mistakes, call, finite, match, rel_error, reports, run_check, to_tensor,
                     wrong_values)

GRAM_MISTAKES = Mistakes({
    "wrong_shape": ("wrong output shape: expected {expected}, got {got}",
                    "return a tensor of shape (N, C, C): one C x C matrix per batch item."),
    "first_item_only": ("only the first batch item is right",
                        "a `return` inside the loop over the batch stops after item 0; compute every item (better: "
                        "all at once with torch.bmm) and return after the loop."),
    "normalized_in_loop": ("the batch items are normalised different numbers of times",
                           "divide by C*H*W once, after the loop (or better, without a loop), not the whole tensor "
                           "inside the loop."),
    "ignores_normalize_false": ("divides even when normalize=False", "divide by C*H*W only `if normalize:`."),
    "not_normalized": ("not normalised (every entry is {factor:.4g} times too large)",
                       "with normalize=True divide by C*H*W."),
    "normalized_by_hw": ("divided by H*W only (every entry is {factor:.4g} times too large)",
                         "divide by C*H*W: the channels count too."),
    "normalized_by_c": ("divided by C only (every entry is {factor:.4g} times too large)",
                        "divide by C*H*W: the positions count too."),
    "normalized_twice": ("divided by C*H*W twice (every entry is {factor:.4g} times too small)",
                         "divide by C*H*W once."),
    "wrong_scale": ("off by a constant factor (every entry is {ratio:.4g} times the expected value)",
                    "divide by C*H*W (and only when normalize=True)."),
})

GRAM_DISTANCE_MISTAKES = Mistakes({
    "wrong_shape": ("wrong output shape: expected {expected}, got {got}",
                    "return one distance per batch item: shape (N,)."),
    "compares_positions": ("compares the features position by position, not their Gram matrices",
                           "take gram_matrix of each first: the texture statistics must not depend on where "
                           "things are."),
    "not_normalized": ("uses Gram matrices without the division by C*H*W",
                       "use gram_matrix(..., normalize=True): otherwise a larger image has a larger Gram matrix, "
                       "and images of different sizes can't be compared."),
    "squared": ("uses squared norms", "use the Frobenius norm itself (.norm()), not its square."),
    "not_relative": ("is not divided by the sizes of the two Gram matrices",
                     "divide by ||G_a|| + ||G_b||, so that the distance lies between 0 and 1."),
    "one_sided": ("divides by the norm of one Gram matrix only",
                  "divide by ||G_a|| + ||G_b||: the distance must not depend on the order of the two images."),
})


@reports(GRAM_MISTAKES, compare_loss)
def check_gram_matrix(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(features, normalize)``: (N, C, H, W) -> (N, C, C), divided by C*H*W if normalize (notebook 02)."""
    g = torch.Generator().manual_seed(SEED)
    shapes = [(2, 3, 5, 4), (3, 4, 3, 6), (1, 5, 4, 2)]
    cases = [(torch.randn(s, generator=g), True) for s in shapes]
    cases += [(torch.randn(s, generator=g), False) for s in shapes[:2]]
    return compare_loss("gram_matrix", fn, graded, cases, grad_arg=0, diagnose=_diagnose_gram,
                        check_shape=_gram_shape, vectorise="reshape to (N, C, H*W) and use torch.bmm (or @) on "
                        "the whole batch at once")


def _gram_shape(got, expected, args):
    n, c, h, w = args[0].shape
    if got.shape == expected.shape:
        return
    if n > 1 and tuple(got.shape) in [(c, c), (1, c, c)]:
        raise GRAM_MISTAKES("first_item_only")
    advice = None
    if tuple(got.shape[-2:]) == (h * w, h * w):
        advice = "you computed F^T F (positions x positions); the Gram matrix is F F^T (channels x channels)."
    raise GRAM_MISTAKES("wrong_shape", advice=advice, expected=tuple(expected.shape), got=tuple(got.shape))


def _ratio(got, expected):
    """r with got == r * expected, or None when they are not proportional."""
    r = float((got * expected).sum() / expected.pow(2).sum().clamp_min(1e-30))
    return r if rel_error(got, r * expected) < 1e-4 else None


def _diagnose_gram(got, expected, args):
    features, normalize = args
    n, c, h, w = features.shape
    ratios = [_ratio(got[i], expected[i]) for i in range(n)]
    close = lambda r, target: r is not None and abs(r / target - 1) < 1e-3  # noqa: E731
    if n > 1 and close(ratios[0], 1) and not all(close(r, 1) for r in ratios[1:]):
        return GRAM_MISTAKES("first_item_only")
    if None in ratios:
        return None
    if not all(close(r, ratios[0]) for r in ratios):
        powers = [torch.log(torch.tensor(r)) / torch.log(torch.tensor(1.0 / (c * h * w))) for r in ratios]
        if normalize and all(abs(p - round(float(p))) < 1e-3 for p in powers):
            return GRAM_MISTAKES("normalized_in_loop")
        return None
    r = ratios[0]
    if not normalize:
        return GRAM_MISTAKES("ignores_normalize_false")
    for factor, mistake in [(c * h * w, "not_normalized"), (c, "normalized_by_hw"), (h * w, "normalized_by_c"),
                            (1 / (c * h * w), "normalized_twice")]:
        if close(r, factor):   # the titles say "times too large", or for the last one "times too small"
            return GRAM_MISTAKES(mistake, factor=factor if factor > 1 else 1 / factor)
    return GRAM_MISTAKES("wrong_scale", ratio=r)


def gram_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> torch.Tensor:
    """||G_a - G_b|| / (||G_a|| + ||G_b||) per batch item (Frobenius norms of Gram matrices normalised by C*H*W).

    features_a: (N, C, H, W), features_b: (N, C, H', W') (the sizes may differ).  Returns (N,), values in [0, 1].
    Introduced in notebook 02.
    """
    ga, gb = losses.gram_matrix(features_a), losses.gram_matrix(features_b)
    norm = lambda g: g.flatten(1).norm(dim=1)  # noqa: E731
    return norm(ga - gb) / (norm(ga) + norm(gb))


@reports(GRAM_DISTANCE_MISTAKES, to_tensor, finite, wrong_values)
def check_gram_distance(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(features_a, features_b)`` -> (N,) relative Gram distances (see ``gram_distance``) (notebook 02)."""
    g = torch.Generator().manual_seed(SEED)
    a = torch.rand(2, 4, 5, 6, generator=g)
    shuffled = a.flatten(2)[:, :, torch.randperm(30, generator=g)].reshape(2, 4, 5, 6)
    cases = [(a, torch.rand(2, 4, 5, 6, generator=g)),             # same size
             (a, shuffled),                                           # same texture, positions shuffled
             (a[:1], torch.rand(1, 4, 3, 7, generator=g) * 2),       # different sizes
             (torch.rand(1, 4, 2, 3, generator=g), torch.rand(1, 4, 4, 6, generator=g))]

    def body():
        for fa, fb in cases:
            expected = gram_distance(fa, fb)
            got = to_tensor(call(fn, (fa.clone(), fb.clone()), ""), expected)
            if got.shape != expected.shape:
                raise GRAM_DISTANCE_MISTAKES("wrong_shape", expected=tuple(expected.shape), got=tuple(got.shape))
            finite(got, "gram_distance")
            if rel_error(got, expected) > 1e-4:
                raise _diagnose_gram_distance(got, fa, fb) or wrong_values(got, expected, None)
        return (f"correct ({len(cases)} cases: different images, the same image with its positions shuffled, "
                "different sizes)")
    return run_check("gram_distance", fn, gram_distance, graded, body)


def _diagnose_gram_distance(got, fa, fb):
    norm = lambda g: g.flatten(1).norm(dim=1)  # noqa: E731
    ga, gb = losses.gram_matrix(fa), losses.gram_matrix(fb)
    ra, rb = losses.gram_matrix(fa, normalize=False), losses.gram_matrix(fb, normalize=False)
    d = norm(ga - gb)
    same_shape = fa.shape == fb.shape
    return match(got, GRAM_DISTANCE_MISTAKES, [
        ("compares_positions", norm(fa - fb) / (norm(fa) + norm(fb)) if same_shape else None),
        ("not_normalized", norm(ra - rb) / (norm(ra) + norm(rb))),
        ("squared", d.pow(2) / (norm(ga) + norm(gb))), ("squared", d.pow(2) / (norm(ga).pow(2) + norm(gb).pow(2))),
        ("not_relative", d), ("one_sided", d / norm(gb)), ("one_sided", d / norm(ga)),
    ])
