"""Exercise checks: run a learner's loss function against the reference and name the mistake.

    from nst_helpers import checks
    checks.check_gram_matrix(gram_matrix)   # prints "✅ gram_matrix: correct (5 cases checked)"

Each check calls the learner's function on several small random inputs (fixed seed, float32,
batches of 1-3 different items, H != W != C), compares with ``nst_helpers.losses``, and prints
one line.  It returns a ``CheckResult`` that is true when the function is correct.  Relative
error: max|x - y| / max(1e-8, max(|x| + |y|)), which must be below 1e-5.

Every check ends in ``finish`` (write new checks the same way):
  * learning mode (the default): a failed check prints its line and swaps the reference
    implementation in for the learner's name in the notebook, with a one-line notice, so that the
    cells below still run;
  * grading mode (``nbgrader autograde``, which sets NBGRADER_EXECUTION, or NST_GRADING=1): the same,
    then it raises ``ExerciseFailed``, so that the autograded cell fails and scores no points.
``graded=False`` (for cells that demonstrate a mistake on purpose) only prints and returns.
"""

from __future__ import annotations

import ast
import functools
import inspect
import os
import textwrap
import traceback
from dataclasses import dataclass

import torch

from . import losses

__all__ = ["CheckResult", "ExerciseFailed", "check_content_loss", "check_gram_matrix", "check_style_loss",
           "check_tv_loss", "check_match_histogram", "check_guided_gram", "finish", "grading"]

TOLERANCE = 1e-5
_SEED = 0


@dataclass(frozen=True)
class CheckResult:
    """What a check found.  ``bool(result)`` is ``result.passed``.

    mistake: an identifier such as "first_item_only" (None when passed);
    notes: remarks on a correct answer, e.g. ("python_loop",); message: the printed text.
    """
    name: str
    passed: bool
    mistake: str | None
    message: str
    notes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.message

    def _ipython_display_(self) -> None:
        """The message is already printed; show nothing more in Jupyter."""


class ExerciseFailed(AssertionError):
    """Raised by a failed check in grading mode."""


def grading() -> bool:
    """True while nbgrader autogrades or validates (NBGRADER_EXECUTION is set) or when NST_GRADING=1."""
    return (os.environ.get("NBGRADER_EXECUTION", "") in ("autograde", "validate")
            or os.environ.get("NST_GRADING", "0") not in ("", "0"))


def finish(result: CheckResult, fn=None, reference=None, graded: bool = True) -> CheckResult:
    """Print ``result``; when it failed and ``graded``, fall back to ``reference`` and, in grading mode, raise.

    The fallback rebinds the learner's name (``fn.__name__`` in the notebook's namespace, where ``fn``
    was defined) to ``reference`` and says so in one line.  Functions defined in modules are left alone.
    """
    print(result.message)
    if result.passed or not graded:
        return result
    name = getattr(fn, "__name__", None)
    namespace = getattr(fn, "__globals__", None)
    in_notebook = isinstance(namespace, dict) and namespace.get("__name__") == "__main__"
    if reference is not None and name and in_notebook and namespace.get(name) is fn:
        namespace[name] = _stand_in(reference)
        print(f"↪ until yours passes, `{name}` is the reference implementation, so the cells below still run.")
    if grading():
        raise ExerciseFailed(result.message)
    return result


class _Mistake(Exception):
    def __init__(self, mistake: str, title: str, advice: str):
        super().__init__(title)
        self.mistake, self.title, self.advice = mistake, title, advice


def rel_error(x: torch.Tensor, y: torch.Tensor) -> float:
    """max|x - y| / max(1e-8, max(|x| + |y|)), computed in float64."""
    x, y = x.detach().double(), y.detach().double()
    return float((x - y).abs().max() / (x.abs() + y.abs()).max().clamp_min(1e-8))


# --- the four checks ---------------------------------------------------------

def check_content_loss(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(content_weight, content_current, content_original)`` -> scalar tensor."""
    g = torch.Generator().manual_seed(_SEED)
    cases = [(w, torch.randn(shape, generator=g), torch.randn(shape, generator=g))
             for w, shape in [(0.37, (1, 4, 5, 3)), (2.5, (2, 3, 4, 6))]]
    return _run("content_loss", fn, graded, cases, grad_arg=1, diagnose=_diagnose_content)


def check_gram_matrix(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(features, normalize)``: (N, C, H, W) -> (N, C, C), divided by C*H*W if normalize."""
    g = torch.Generator().manual_seed(_SEED)
    shapes = [(2, 3, 5, 4), (3, 4, 3, 6), (1, 5, 4, 2)]
    cases = [(torch.randn(s, generator=g), True) for s in shapes]
    cases += [(torch.randn(s, generator=g), False) for s in shapes[:2]]
    return _run("gram_matrix", fn, graded, cases, grad_arg=0, diagnose=_diagnose_gram,
                check_shape=_gram_shape, vectorise="reshape to (N, C, H*W) and use torch.bmm (or @) on "
                "the whole batch at once")


def check_style_loss(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(feats, style_layers, style_targets, style_weights)`` -> scalar tensor."""
    g = torch.Generator().manual_seed(_SEED)

    def target(shape):
        return losses.gram_matrix(torch.randn(shape, generator=g))

    feats_dict = {name: torch.randn(shape, generator=g) for name, shape in
                  [("relu1_1", (1, 3, 6, 5)), ("relu2_1", (1, 5, 4, 3)), ("relu3_1", (1, 6, 2, 3)),
                   ("relu4_2", (1, 6, 2, 3))]}
    case_dict = (feats_dict, ["relu1_1", "relu3_1", "relu2_1"],
                 [target((1, 3, 6, 5)), target((1, 6, 2, 3)), target((1, 5, 4, 3))], [0.7, 3.0, 12.0])
    feats_list = [torch.randn(shape, generator=g) for shape in [(2, 4, 3, 5), (2, 4, 5, 2), (2, 6, 3, 3)]]
    case_list = (feats_list, [1, 0], [target((1, 4, 5, 2)), target((1, 4, 3, 5))], [4.0, 0.25])
    return _run("style_loss", fn, graded, [case_dict, case_list], grad_arg=0, diagnose=_diagnose_style,
                hint="style_loss uses your gram_matrix: make sure check_gram_matrix passes first.")


def check_tv_loss(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(img, tv_weight)``: (N, C, H, W) -> scalar tensor."""
    g = torch.Generator().manual_seed(_SEED)
    cases = [(torch.randn(2, 3, 5, 4, generator=g), 0.25), (torch.randn(3, 3, 4, 7, generator=g), 4.0),
             (torch.rand(1, 3, 6, 6, generator=g), 1.5)]
    return _run("tv_loss", fn, graded, cases, grad_arg=0, diagnose=_diagnose_tv,
                vectorise="subtract shifted slices, e.g. img[:, :, 1:, :] - img[:, :, :-1, :]")


# --- notebook 06: controls ------------------------------------------------------

def _correlated_colours(g, height, width, offset):
    """A random image whose R, G and B are correlated (a non-diagonal colour covariance)."""
    base = torch.rand(1, 3, height, width, generator=g)
    mix = torch.rand(3, 3, generator=g) * 0.4 + torch.eye(3) * 0.3
    return torch.einsum("ij,njhw->nihw", mix, base) + offset


def check_match_histogram(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(style, content)``: the style recoloured to the content's colour mean and covariance."""
    from . import controls
    name, reference = "match_histogram", controls.match_histogram
    g = torch.Generator().manual_seed(_SEED)
    cases = [(_correlated_colours(g, 9, 12, 0.1), _correlated_colours(g, 7, 5, 0.2)),
             (_correlated_colours(g, 6, 6, 0.3) * 0.5, _correlated_colours(g, 10, 8, 0.0))]
    try:
        _not_the_stand_in(fn, reference)
        for style, content in cases:
            style_before = style.clone()
            got = _call(fn, (style, content.clone()), "")
            got = _to_tensor(got, style)
            if not torch.equal(style, style_before):
                raise _Mistake("modifies_input", "changes the style image it was given",
                               "work on a new tensor (e.g. `style - mean`), not in place.")
            if got.shape != style.shape:
                raise _Mistake("wrong_shape", f"wrong output shape: expected {tuple(style.shape)}, got "
                               f"{tuple(got.shape)}", "return the recoloured style, the same shape as the style.")
            if not torch.isfinite(got).all():
                raise _Mistake("not_finite", "returns NaN or infinite values",
                               "check the square roots: add a small epsilon to the eigenvalues.")
            mean_got, cov_got = controls.colour_stats(got)
            mean_c, cov_c = controls.colour_stats(content)
            mean_err, cov_err = float((mean_got - mean_c).abs().max()), float((cov_got - cov_c).abs().max())
            if max(mean_err, cov_err) > 1e-3:
                raise _diagnose_histogram(got, style, content, mean_err, cov_err)
        result = CheckResult(name, True, None, f"✅ {name}: the colour mean and covariance match the content's "
                             f"({len(cases)} cases checked)")
    except _Mistake as m:
        result = CheckResult(name, False, m.mistake, f"❌ {name}: {m.title} — {m.advice}")
    return finish(result, fn, reference, graded)


def _diagnose_histogram(got, style, content, mean_err, cov_err):
    from . import controls
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
    found = _match(got.double(), candidates)
    if found:
        return found
    return _Mistake("wrong_statistics", f"wrong colour statistics (mean off by {mean_err:.2g}, covariance off by "
                    f"{cov_err:.2g}; both should be < 1e-3)", "compare your code with the formula above, step by step.")


def check_guided_gram(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(features, mask)``: (N, C, H, W) and (N or 1, 1, H, W) -> (N, C, C), the region's Gram matrix."""
    from . import controls
    name, reference = "guided_gram", controls.guided_gram
    g = torch.Generator().manual_seed(_SEED)
    binary = (torch.rand(2, 1, 5, 4, generator=g) > 0.5).float()
    binary[:, :, 0, 0] = 1
    cases = [(torch.randn(2, 3, 5, 4, generator=g), binary),
             (torch.randn(1, 4, 3, 6, generator=g), torch.rand(1, 1, 3, 6, generator=g)),
             (torch.randn(3, 2, 4, 4, generator=g), torch.ones(1, 1, 4, 4))]
    try:
        _not_the_stand_in(fn, reference)
        for features, mask in cases:
            expected = reference(features, mask)
            got = _to_tensor(_call(fn, (features.clone(), mask.clone()), ""), expected)
            if got.shape != expected.shape:
                raise _Mistake("wrong_shape", f"wrong output shape: expected {tuple(expected.shape)}, got "
                               f"{tuple(got.shape)}", "return one C x C matrix per batch item, as gram_matrix does.")
            if not torch.isfinite(got).all():
                raise _Mistake("not_finite", "returns NaN or infinite values", "check the division by the area.")
            if rel_error(got, expected) > TOLERANCE:
                raise _diagnose_guided(got, expected, features, mask)
        _check_gradients(fn, cases[1], 0, reference)
        result = CheckResult(name, True, None, f"✅ {name}: correct ({len(cases)} cases checked)")
    except _Mistake as m:
        result = CheckResult(name, False, m.mistake, f"❌ {name}: {m.title} — {m.advice}")
    return finish(result, fn, reference, graded)


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
        ("unnormalised", "the Gram matrix is not normalised by C*H*W",
         "use gram_matrix(features * mask) with its default normalize=True.", masked * c * h * w / square),
    ]
    return _match(got, candidates) or _wrong_values(got, expected, "G = gram_matrix(F * m) / mean(m²), per item.")


# --- the runner ----------------------------------------------------------------

def _run(name, fn, graded, cases, *, grad_arg, diagnose, check_shape=None, vectorise=None,
         hint=None) -> CheckResult:
    reference = getattr(losses, name)
    notes, extra = (), ""
    try:
        _not_the_stand_in(fn, reference)
        for args in cases:
            with torch.no_grad():
                expected = reference(*args)
            learner_args = _clone(args)
            got = _to_tensor(_call(fn, learner_args, ""), expected)
            (check_shape or _scalar_shape)(got, expected, args)
            if got.dtype != expected.dtype:
                raise _Mistake("wrong_dtype", f"returns {got.dtype}, expected {expected.dtype}",
                               "keep everything in float32 (no .double(), no dtype=torch.float64).")
            if not _same(learner_args, args):
                raise _Mistake("modifies_input", "changes its input tensors in place",
                               "don't use in-place operations (x /= ..., x.pow_(2), x[...] = ...) on the "
                               "inputs; write x = x / ... to make a new tensor.")
            if rel_error(got, expected) > TOLERANCE:
                raise diagnose(got, expected, args) or _wrong_values(got, expected, hint)
        with torch.enable_grad():
            _check_gradients(fn, cases[0], grad_arg, reference)
        loops = _loops(fn) if vectorise else []
        if loops:
            notes = ("python_loop",)
            extra = (f"\n💡 works, but vectorise it: your code uses a Python {' and '.join(loops)}; "
                     f"{vectorise}. It is much faster on real images.")
        result = CheckResult(name, True, None, f"✅ {name}: correct ({len(cases)} cases checked){extra}", notes)
    except _Mistake as m:
        result = CheckResult(name, False, m.mistake, f"❌ {name}: {m.title} — {m.advice}")
    return finish(result, fn, reference, graded)


def _stand_in(reference):
    """The reference, marked so that a check can tell it from the learner's own function."""
    @functools.wraps(reference)
    def stand_in(*args, **kwargs):
        return reference(*args, **kwargs)
    stand_in.nst_stand_in = True
    return stand_in


def _not_the_stand_in(fn, reference):
    """A name that an earlier failed check bound to the reference must not pass as the learner's work."""
    if getattr(fn, "nst_stand_in", False):
        raise _Mistake("still_the_reference", "this is still the reference stand-in, not your function",
                       f"run the cell that defines your `{reference.__name__}` again, then this check.")


def _call(fn, args, when):
    try:
        with torch.enable_grad():
            return fn(*args)
    except NotImplementedError:
        raise _Mistake("not_implemented", "not written yet",
                       "replace `raise NotImplementedError()` with your code.") from None
    except Exception as error:  # noqa: BLE001 - we report any error of the learner's code
        where = _error_line(fn, error)
        advice = "fix this error first."
        if isinstance(error, NameError):
            advice = "a NameError usually means a typo in a variable name; " + advice
        raise _Mistake("exception", f"raises {type(error).__name__}: {error}{where}{when}", advice) from None


def _error_line(fn, error) -> str:
    code = getattr(fn, "__code__", None)
    frames = [f for f in traceback.extract_tb(error.__traceback__) if code and f.filename == code.co_filename]
    return f" (at `{frames[-1].line}`)" if frames and frames[-1].line else ""


def _to_tensor(got, expected):
    if got is None:
        raise _Mistake("returned_none", "returns None", "add a `return` statement at the end.")
    if isinstance(got, torch.Tensor):
        return got.detach()
    try:  # a Python number or a NumPy array: compare the values, the gradient check will complain
        return torch.as_tensor(got).to(expected.dtype)
    except (TypeError, ValueError, RuntimeError):
        raise _Mistake("not_a_tensor", f"returns a {type(got).__name__}, not a tensor",
                       "return a torch.Tensor.") from None


def _scalar_shape(got, expected, args):
    if got.numel() != 1:
        raise _Mistake("wrong_shape", f"wrong output shape: expected a scalar (shape ()), got {tuple(got.shape)}",
                       "sum over every dimension, the batch included, so that the loss is one number.")


def _gram_shape(got, expected, args):
    n, c, h, w = args[0].shape
    if got.shape == expected.shape:
        return
    if n > 1 and tuple(got.shape) in [(c, c), (1, c, c)]:
        raise _first_item_only()
    advice = "return a tensor of shape (N, C, C): one C x C matrix per batch item."
    if tuple(got.shape[-2:]) == (h * w, h * w):
        advice = "you computed F^T F (positions x positions); the Gram matrix is F F^T (channels x channels)."
    raise _Mistake("wrong_shape", f"wrong output shape: expected {tuple(expected.shape)}, got {tuple(got.shape)}",
                   advice)


def _first_item_only():
    return _Mistake("first_item_only", "only the first batch item is right",
                    "a `return` inside the loop over the batch stops after item 0; compute every item "
                    "(better: all at once with torch.bmm) and return after the loop.")


def _wrong_values(got, expected, hint):
    message = f"wrong values (rel_error {rel_error(got, expected):.2g}, should be < {TOLERANCE:g})"
    return _Mistake("wrong_values", message, hint or "compare your code with the formula above, term by term.")


def _check_gradients(fn, args, grad_arg, reference):
    leaves = _clone(args[grad_arg], requires_grad=True)
    learner_args = args[:grad_arg] + (leaves,) + args[grad_arg + 1:]
    got = _call(fn, learner_args, " when the inputs require gradients")
    found = _source_attributes(fn, {"detach", "numpy", "item", "tolist", "data", "no_grad"})
    advice = ("use only torch operations on the tensors so autograd can follow them"
              + (f" (remove {', '.join('.' + a for a in found)})" if found else "") + ".")
    if not isinstance(got, torch.Tensor) or got.grad_fn is None:
        raise _Mistake("not_differentiable", "the result is not differentiable (no grad_fn)", advice)
    ref_leaves = _clone(args[grad_arg], requires_grad=True)
    expected = reference(*(args[:grad_arg] + (ref_leaves,) + args[grad_arg + 1:]))
    probe = torch.randn(expected.shape, generator=torch.Generator().manual_seed(_SEED + 1))
    mine, theirs = _tensors(leaves), _tensors(ref_leaves)
    grads = torch.autograd.grad((got * probe).sum(), mine, allow_unused=True)
    ref_grads = torch.autograd.grad((expected * probe).sum(), theirs, allow_unused=True)
    for grad, ref_grad, leaf in zip(grads, ref_grads, mine):
        zero = torch.zeros_like(leaf)
        if rel_error(zero if grad is None else grad, zero if ref_grad is None else ref_grad) > 1e-4:
            raise _Mistake("not_differentiable", "gradients do not flow through every part of the result",
                           advice)


# --- naming the mistakes ----------------------------------------------------------

def _match(got, candidates):
    """The first (mistake, title, advice) whose candidate value equals ``got``."""
    for mistake, title, advice, value in candidates:
        if value is not None and rel_error(got, value) < 1e-4:
            return _Mistake(mistake, title, advice)
    return None


_NOT_SQUARED = ("not_squared", "the differences are not squared",
                "square the differences before summing: (a - b).pow(2) or (a - b) ** 2, not abs() or a norm.")
_MEAN = ("mean_instead_of_sum", "uses a mean instead of a sum",
         "this loss is a plain sum over all elements: use .sum(), not .mean().")
_NO_WEIGHT = ("missing_weight", "the weight is missing", "multiply the sum by the weight argument.")


def _diagnose_content(got, expected, args):
    w, current, original = args
    d = current - original
    return _match(got, [(*_NO_WEIGHT, d.pow(2).sum()), (*_MEAN, w * d.pow(2).mean()),
                        (*_NOT_SQUARED, w * d.abs().sum()), (*_NOT_SQUARED, w * d.sum()),
                        (*_NOT_SQUARED, w * d.norm())])


def _diagnose_style(got, expected, args):
    feats, layers, targets, weights = args
    grams = [losses.gram_matrix(feats[layer]) for layer in layers]

    def total(term, use_weights=True, against=targets):
        if against is None:
            return None
        return sum((w if use_weights else 1.0) * term(g - a) for g, a, w in zip(grams, against, weights))

    squared = lambda d: d.pow(2).sum()  # noqa: E731
    by_layer = None  # style_targets[layer] instead of style_targets[i], when that happens to run
    if all(isinstance(layer, int) and 0 <= layer < len(targets) for layer in layers):
        by_layer = [targets[layer] for layer in layers]
        if any(t.shape[-2:] != g.shape[-2:] for t, g in zip(by_layer, grams)):
            by_layer = None
    first = ("first_layer_only", "only the first style layer is used",
             "sum the weighted terms of all layers; don't return inside the loop.")
    target_advice = "compare the Gram matrix of feats[style_layers[i]] with style_targets[i] (the same i)."
    return _match(got, [
        ("missing_layer_weights", "the layer weights are missing",
         "multiply each layer's term by its weight style_weights[i].", total(squared, use_weights=False)),
        (*first, weights[0] * squared(grams[0] - targets[0])), (*first, squared(grams[0] - targets[0])),
        (*_NOT_SQUARED, total(lambda d: d.abs().sum())), (*_NOT_SQUARED, total(lambda d: d.sum())),
        (*_NOT_SQUARED, total(lambda d: d.norm())), (*_MEAN, total(lambda d: d.pow(2).mean())),
        ("wrong_target", "compares against the wrong target", target_advice, total(squared, against=by_layer)),
        ("wrong_target", "does not subtract the target", target_advice,
         total(squared, against=[torch.zeros_like(t) for t in targets]))])


def _diagnose_tv(got, expected, args):
    img, w = args
    dv, dh = img[:, :, 1:, :] - img[:, :, :-1, :], img[:, :, :, 1:] - img[:, :, :, :-1]
    sv, sh = dv.pow(2).sum(), dh.pow(2).sum()
    one = ("one_direction", "only one direction is counted",
           "add the squared differences between vertical neighbours AND between horizontal neighbours.")
    first = None if img.shape[0] == 1 else losses.tv_loss(img[:1], w)
    return _match(got, [(*one, w * sv), (*one, w * sh), (*_NO_WEIGHT, sv + sh),
                        (*_NOT_SQUARED, w * (dv.abs().sum() + dh.abs().sum())),
                        (*_NOT_SQUARED, w * (dv.sum() + dh.sum())),
                        (*_MEAN, w * (dv.pow(2).mean() + dh.pow(2).mean())), (*_MEAN, w * (sv + sh) / img.numel()),
                        ("first_item_only", "only the first batch item is counted",
                         "sum over the whole batch (all N images), not img[0] only.", first)])


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
        return _first_item_only()
    if None in ratios:
        return None
    if not all(close(r, ratios[0]) for r in ratios):
        powers = [torch.log(torch.tensor(r)) / torch.log(torch.tensor(1.0 / (c * h * w))) for r in ratios]
        if normalize and all(abs(p - round(float(p))) < 1e-3 for p in powers):
            return _Mistake("normalized_in_loop", "the batch items are normalised different numbers of times",
                            "divide by C*H*W once, after the loop (or better, without a loop), not the "
                            "whole tensor inside the loop.")
        return None
    r = ratios[0]
    if not normalize:
        return _Mistake("ignores_normalize_false", "divides even when normalize=False",
                        "divide by C*H*W only `if normalize:`.")
    named = [(c * h * w, "not_normalized", "not normalised", "with normalize=True divide by C*H*W."),
             (c, "normalized_by_hw", "divided by H*W only", "divide by C*H*W: the channels count too."),
             (h * w, "normalized_by_c", "divided by C only", "divide by C*H*W: the positions count too."),
             (1 / (c * h * w), "normalized_twice", "divided by C*H*W twice", "divide by C*H*W once.")]
    for factor, mistake, title, advice in named:
        if close(r, factor):
            return _Mistake(mistake, f"{title} (every entry is {factor:.4g} times too large)" if factor > 1
                            else f"{title} (every entry is {1 / factor:.4g} times too small)", advice)
    return _Mistake("wrong_scale", f"off by a constant factor (every entry is {r:.4g} times the expected value)",
                    "divide by C*H*W (and only when normalize=True).")


# --- small helpers ---------------------------------------------------------------------

def _clone(obj, requires_grad=False):
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone().requires_grad_(requires_grad)
    if isinstance(obj, dict):
        return {k: _clone(v, requires_grad) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_clone(v, requires_grad) for v in obj)
    return obj


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        return [obj]
    values = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else []
    return [t for v in values for t in _tensors(v)]


def _same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(_tensors(a), _tensors(b)))


def _tree(fn):
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return None


def _loops(fn) -> list[str]:
    """Kinds of Python loops in the source of ``fn``: "for loop", "while loop", "comprehension"."""
    kinds = {ast.For: "`for` loop", ast.While: "`while` loop", ast.comprehension: "comprehension"}
    tree = _tree(fn)
    return sorted({kinds[type(node)] for node in (ast.walk(tree) if tree else []) if type(node) in kinds})


def _source_attributes(fn, names) -> list[str]:
    tree = _tree(fn)
    nodes = ast.walk(tree) if tree else []
    return sorted({n.attr for n in nodes if isinstance(n, ast.Attribute) and n.attr in names})
