"""Comparing a learner's function with the reference: values, gradients, untouched inputs, Python loops."""

from __future__ import annotations

import ast
import inspect
import textwrap

import torch

from .. import losses
from .engine import (SEED, TOLERANCE, CheckResult, Mistake, call, rel_error, run_check, same_device, scalar_shape,
                     to_tensor, wrong_values)


def compare_loss(name: str, fn, graded: bool, cases, *, grad_arg: int, diagnose, check_shape=None,
               vectorise: str | None = None, hint: str | None = None) -> CheckResult:
    """Check ``fn`` against ``losses.<name>`` on ``cases`` (tuples of arguments), in the one frame.

    On each case: the output's shape (``check_shape``, a scalar by default), dtype, finiteness, that the
    inputs are untouched, the values (``diagnose(got, expected, args)`` names a wrong one); then the
    gradients with respect to argument ``grad_arg``; with ``vectorise``, a note when the code loops.
    """
    reference = getattr(losses, name)

    def body():
        for args in cases:
            with torch.no_grad():
                expected = reference(*args)
            learner_args = clone(args)
            got = to_tensor(call(fn, learner_args, ""), expected)
            (check_shape or scalar_shape)(got, expected, args)
            if got.dtype != expected.dtype:
                raise Mistake("wrong_dtype", f"returns {got.dtype}, expected {expected.dtype}",
                              "keep everything in float32 (no .double(), no dtype=torch.float64).")
            if not torch.isfinite(got).all():
                raise Mistake("not_finite", "returns NaN or infinite values",
                              "look for a division by zero, a log or square root of a negative number, or an "
                              "uninitialised tensor (torch.empty).")
            if not same(learner_args, args):
                raise Mistake("modifies_input", "changes its input tensors in place",
                              "don't use in-place operations (x /= ..., x.pow_(2), x[...] = ...) on the "
                              "inputs; write x = x / ... to make a new tensor.")
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


def compare_gradients(fn, args, grad_arg, reference):
    leaves = clone(args[grad_arg], requires_grad=True)
    others = clone(args)  # the learner gets copies: a change in place must not reach the reference's inputs
    learner_args = others[:grad_arg] + (leaves,) + others[grad_arg + 1:]
    got = call(fn, learner_args, " when the inputs require gradients")
    if not same(learner_args, args):
        raise Mistake("modifies_input", "changes its input tensors in place",
                      "don't use in-place operations (x /= ..., x.zero_(), x[...] = ..., list.append) on the "
                      "inputs; write x = x / ... to make a new tensor.")
    if isinstance(got, torch.Tensor):
        same_device(got, args[grad_arg] if isinstance(args[grad_arg], torch.Tensor) else None)
    args = clone(args)
    found = source_attributes(fn, {"detach", "numpy", "item", "tolist", "data", "no_grad"})
    advice = ("use only torch operations on the tensors so autograd can follow them"
              + (f" (remove {', '.join('.' + a for a in found)})" if found else "") + ".")
    if not isinstance(got, torch.Tensor) or got.grad_fn is None:
        raise Mistake("not_differentiable", "the result is not differentiable (no grad_fn)", advice)
    ref_leaves = clone(args[grad_arg], requires_grad=True)
    expected = reference(*(args[:grad_arg] + (ref_leaves,) + args[grad_arg + 1:]))
    probe = torch.randn(expected.shape, generator=torch.Generator().manual_seed(SEED + 1))
    mine, theirs = tensors(leaves), tensors(ref_leaves)
    grads = torch.autograd.grad((got * probe).sum(), mine, allow_unused=True)
    ref_grads = torch.autograd.grad((expected * probe).sum(), theirs, allow_unused=True)
    for grad, ref_grad, leaf in zip(grads, ref_grads, mine):
        zero = torch.zeros_like(leaf)
        if rel_error(zero if grad is None else grad, zero if ref_grad is None else ref_grad) > 1e-4:
            raise Mistake("not_differentiable", "gradients do not flow through every part of the result",
                          advice)


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

