"""The loop spy of notebooks 01, 05 and 07: networks and optimisers that watch how a learner's loop runs.

``SpyNet`` wraps a network and records what it is called on; ``OptimizerSpy`` records every optimiser
created and watches L-BFGS's steps and closures; ``TinyTransform`` and ``WatchedAdam`` (notebook 07) are a
small network to train and an Adam that records the gradients each step follows.  ``LOOP_MISTAKES`` holds
the loop mistakes these notebooks share, under one id each.
"""

from __future__ import annotations

import torch

from .compare import same
from .engine import SEED, Mistakes, rel_error

LOOP_MISTAKES = Mistakes({   # the {fields} of a title are filled in where it is raised
    "network_changed": ("the network's weights are optimised (or changed)",
                        "give the optimiser only the pixels: torch.optim.LBFGS([x], ...); the network stays "
                        "frozen."),
    "pixels_not_optimised": ("the image's pixels are not optimised",
                             "make x a leaf with x.requires_grad_(True), give [x] to the optimiser and compute "
                             "the network's output on x inside the closure."),
    "targets_recomputed": ("the {image} went through the network {calls} times (the target is recomputed "
                           "inside the closure)",
                           "compute the targets once, before the loop (under torch.no_grad()), not in the "
                           "closure."),
    "gradients_not_zeroed": ("gradients are not zeroed: they pile up from one evaluation to the next",
                             "call optimizer.zero_grad() at the start of the closure, before loss.backward() "
                             "(L-BFGS calls it several times per step)."),
})


class SpyNet(torch.nn.Module):
    """Wraps ``net`` and records how a loop calls it.

    seen: the inputs that did not require gradients (targets are computed from these);
    pixel_calls and first_pixels: the calls on an image that requires gradients, and the first such image;
    stale_gradient: the pixels still held a gradient when a new one reached the network's output.
    """

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net
        self.seen: list[torch.Tensor] = []
        self.pixel_calls = 0
        self.first_pixels = None
        self.stale_gradient = False

    def calls_on(self, image: torch.Tensor) -> int:
        """How many times the network saw ``image`` without gradients."""
        return sum(torch.equal(seen, image) for seen in self.seen)

    def forward(self, image):
        out = self.net(image)
        if not image.requires_grad:
            self.seen.append(image.detach().clone())
            return out
        self.pixel_calls += 1
        if self.first_pixels is None:
            self.first_pixels = image.detach().clone()
        if image.is_leaf:  # when the gradient reaches the layer, the pixels' old gradient must be gone
            def look(grad, pixels=image):
                if pixels.grad is not None and pixels.grad.abs().sum() > 0:
                    self.stale_gradient = True
            for value in out.values():
                if value.requires_grad:
                    value.register_hook(look)
        return out


class TinyExtractor(torch.nn.Module):
    """Two small random convolutions standing in for VGG: fast, with layers named "relu1_1" and "relu2_1".

    Its weights require gradients (as an unfrozen network's would), so targets that are not
    detached carry a graph back into it.
    """

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(SEED)
        self.conv1 = torch.nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(6, 8, 3, padding=1, stride=2)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(0.4 * torch.randn(p.shape, generator=g))

    def forward(self, image):
        first = torch.relu(self.conv1(image))
        second = torch.relu(self.conv2(first))
        return {"relu1_1": first, "relu2_1": second}


class TinyTransform(torch.nn.Module):
    """Two small convolutions and a sigmoid standing in for the transformation network; counts its calls."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(SEED + 2)
        self.conv1 = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(4, 3, 3, padding=1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(0.4 * torch.randn(p.shape, generator=g))
        self.calls = 0

    def forward(self, photos):
        self.calls += 1
        return torch.sigmoid(self.conv2(torch.relu(self.conv1(photos))))


class WatchedAdam(torch.optim.Adam):
    """Adam that records, at every ``step()``, the gradients it follows (``seen``: one list per step)."""

    def __init__(self, params, lr):
        super().__init__(params, lr=lr)
        self.seen: list[list] = []

    def step(self, closure=None):
        self.seen.append([None if p.grad is None else p.grad.detach().clone()
                          for group in self.param_groups for p in group["params"]])
        return super().step(closure)


class OptimizerSpy:
    """While active: records every optimiser created, and watches L-BFGS's steps and closures."""

    def __init__(self):
        self.optimizers, self.accumulates, self.moved, self.no_gradient = [], None, False, False
        self._last = None

    def __enter__(self):
        spy = self
        self._init, self._step = torch.optim.Optimizer.__init__, torch.optim.LBFGS.step

        def init(optimizer, *args, **kwargs):
            spy._init(optimizer, *args, **kwargs)
            spy.optimizers.append(optimizer)

        def step(optimizer, closure=None):
            params = [p for group in optimizer.param_groups for p in group["params"]]
            if spy._last is not None and not same(params, spy._last):
                spy.moved = True                      # changed between two steps, behind the optimiser's back
            if spy.accumulates is None and closure is not None:
                spy.accumulates = spy._accumulates(closure, params)

            def watched():
                before = [p.detach().clone() for p in params]
                loss = closure()
                if not same(params, before):
                    spy.moved = True                  # the closure itself changed the pixels
                return loss

            out = spy._step(optimizer, watched if closure is not None else None)
            spy._last = [p.detach().clone() for p in params]
            return out

        torch.optim.Optimizer.__init__, torch.optim.LBFGS.step = init, step
        return self

    def __exit__(self, *exc):
        torch.optim.Optimizer.__init__, torch.optim.LBFGS.step = self._init, self._step

    def _accumulates(self, closure, params):
        """Call the closure twice at the same pixels: a closure that zeroes gradients gives the same twice."""
        for p in params:
            p.grad = None
        grads = []
        for _ in range(2):
            with torch.enable_grad():
                closure()
            grads.append([None if p.grad is None else p.grad.detach().clone() for p in params])
        if any(g is None for g in grads[0]):
            self.no_gradient = True
            return False
        return all(rel_error(second, 2 * first) < 1e-4 and float(first.abs().max()) > 0
                   for first, second in zip(*grads))
