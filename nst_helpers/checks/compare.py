"""Comparing a learner's function with the reference: values, gradients, untouched inputs, Python loops."""

from __future__ import annotations

import ast
import inspect
import textwrap

import torch

from .. import losses
from .engine import (SEED, TOLERANCE, CheckResult, Mistakes, call, rel_error, reports, run_check, same_device,
                     to_tensor, wrong_values)

TERM_MISTAKES = Mistakes({   # wrong sums of squares, shared by the losses' checks (through ``match``)
    "not_squared": ("the differences are not squared",
                    "square the differences before summing: (a - b).pow(2) or (a - b) ** 2, not abs() or a norm."),
    "mean_instead_of_sum": ("uses a mean instead of a sum",
                            "this loss is a plain sum over all elements: use .sum(), not .mean()."),
    "missing_weight": ("the weight is missing", "multiply the sum by the weight argument."),
})

LOSS_MISTAKES = Mistakes({   # named by compare_loss
    "wrong_dtype": ("returns {got}, expected {expected}",
                    "keep everything in float32 (no .double(), no dtype=torch.float64)."),
    "not_finite": ("returns NaN or infinite values",
                   "look for a division by zero, a log or square root of a negative number, or an uninitialised "
                   "tensor (torch.empty)."),
    "modifies_input": ("changes its input tensors in place",
                       "don't use in-place operations (x /= ..., x.pow_(2), x[...] = ...) on the inputs; write "
                       "x = x / ... to make a new tensor."),
})

GRADIENT_MISTAKES = Mistakes({   # named by compare_gradients
    "modifies_input": ("changes its input tensors in place",
                       "don't use in-place operations (x /= ..., x.zero_(), x[...] = ..., list.append) on the "
                       "inputs; write x = x / ... to make a new tensor."),
    "not_differentiable": ("the result is not differentiable (no grad_fn)",
                           "use only torch operations on the tensors so autograd can follow them{remove}."),
    "not_differentiable/partly": ("gradients do not flow through every part of the result",
                                  "use only torch operations on the tensors so autograd can follow them{remove}."),
})


@reports(GRADIENT_MISTAKES, same_device)
def compare_gradients(fn, args, grad_arg, reference):
    leaves = clone(args[grad_arg], requires_grad=True)
    others = clone(args)  # the learner gets copies: a change in place must not reach the reference's inputs
    learner_args = others[:grad_arg] + (leaves,) + others[grad_arg + 1:]
    got = call(fn, learner_args, " when the inputs require gradients")
    if not same(learner_args, args):
        raise GRADIENT_MISTAKES("modifies_input")
    if isinstance(got, torch.Tensor):
        same_device(got, args[grad_arg] if isinstance(args[grad_arg], torch.Tensor) else None)
    args = clone(args)
    found = source_attributes(fn, {"detach", "numpy", "item", "tolist", "data", "no_grad"})
    remove = f" (remove {', '.join('.' + a for a in found)})" if found else ""
    if not isinstance(got, torch.Tensor) or got.grad_fn is None:
        raise GRADIENT_MISTAKES("not_differentiable", remove=remove)
    ref_leaves = clone(args[grad_arg], requires_grad=True)
    expected = reference(*(args[:grad_arg] + (ref_leaves,) + args[grad_arg + 1:]))
    probe = torch.randn(expected.shape, generator=torch.Generator().manual_seed(SEED + 1))
    mine, theirs = tensors(leaves), tensors(ref_leaves)
    grads = torch.autograd.grad((got * probe).sum(), mine, allow_unused=True)
    ref_grads = torch.autograd.grad((expected * probe).sum(), theirs, allow_unused=True)
    for grad, ref_grad, leaf in zip(grads, ref_grads, mine):
        zero = torch.zeros_like(leaf)
        if rel_error(zero if grad is None else grad, zero if ref_grad is None else ref_grad) > 1e-4:
            raise GRADIENT_MISTAKES("not_differentiable/partly", remove=remove)


@reports(LOSS_MISTAKES, to_tensor, compare_gradients, wrong_values)
def compare_loss(name: str, fn, graded: bool, cases, *, grad_arg: int, diagnose, check_shape,
                 vectorise: str | None = None, hint: str | None = None) -> CheckResult:
    """Check ``fn`` against ``losses.<name>`` on ``cases`` (tuples of arguments), in the one frame.

    On each case: the output's shape (``check_shape(got, expected, args)``), dtype, finiteness, that the
    inputs are untouched, the values (``diagnose(got, expected, args)`` names a wrong one); then the
    gradients with respect to argument ``grad_arg``; with ``vectorise``, a note when the code loops.
    The check that calls it names what ``check_shape`` and ``diagnose`` can report.
    """
    reference = getattr(losses, name)

    def body():
        for args in cases:
            with torch.no_grad():
                expected = reference(*args)
            learner_args = clone(args)
            got = to_tensor(call(fn, learner_args, ""), expected)
            check_shape(got, expected, args)
            if got.dtype != expected.dtype:
                raise LOSS_MISTAKES("wrong_dtype", got=got.dtype, expected=expected.dtype)
            if not torch.isfinite(got).all():
                raise LOSS_MISTAKES("not_finite")
            if not same(learner_args, args):
                raise LOSS_MISTAKES("modifies_input")
            if rel_error(got, expected) > TOLERANCE:
                raise diagnose(got, expected, args) or wrong_values(got, expected, hint)
        with torch.enable_grad():
            compare_gradients(fn, cases[0], grad_arg, reference)
        loops = python_loops(fn) if vectorise else []
        if not loops:
            return f"correct ({len(cases)} cases checked)"
        return (f"correct ({len(cases)} cases checked)\n💡 works, but vectorise it: your code uses a Python "
                f"{' and '.join(loops)}; {vectorise}. It is much faster on real images."), ("python_loop",)
    return run_check(name, fn, reference, graded, body)


def clone(obj, requires_grad=False):
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone().requires_grad_(requires_grad)
    if isinstance(obj, dict):
        return {k: clone(v, requires_grad) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(clone(v, requires_grad) for v in obj)
    return obj


def tensors(obj):
    if isinstance(obj, torch.Tensor):
        return [obj]
    values = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else []
    return [t for v in values for t in tensors(v)]


def same(a, b) -> bool:
    """Whether ``a`` still equals ``b``: tensors, numbers and the lists and dicts holding them."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape and \
            torch.equal(a.detach(), b.detach())
    if isinstance(a, dict) or isinstance(b, dict):
        return isinstance(a, dict) and isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b) and \
            all(same(x, y) for x, y in zip(a, b))
    return a is b or a == b


def source_tree(fn):
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return None


def python_loops(fn) -> list[str]:
    """Kinds of Python loops in the source of ``fn``: "for loop", "while loop", "comprehension"."""
    kinds = {ast.For: "`for` loop", ast.While: "`while` loop", ast.comprehension: "comprehension"}
    tree = source_tree(fn)
    return sorted({kinds[type(node)] for node in (ast.walk(tree) if tree else []) if type(node) in kinds})


def source_attributes(fn, names) -> list[str]:
    tree = source_tree(fn)
    nodes = ast.walk(tree) if tree else []
    return sorted({n.attr for n in nodes if isinstance(n, ast.Attribute) and n.attr in names})

