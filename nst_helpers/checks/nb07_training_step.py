"""Checks of notebook 07 (fast style transfer): one training step of the transformation network.

The step runs once on a tiny problem (two 16 x 16 photos, a two-layer stand-in for VGG, a two-layer
network) with a watched Adam whose weights still hold the previous step's gradient: what the step hands
to ``optimizer.step()`` must be the gradient of this step's loss with respect to the network's weights,
and nothing else may change: not the VGG, not the photos, not the style targets.
"""

from __future__ import annotations

import torch

from .. import losses
from ..fast.training import CONTENT_LAYERS, STYLE_LAYERS  # the layers of the library's training
from .compare import same
from .engine import SEED, CheckResult, Mistakes, call, match, rel_error, reports, run_check, to_tensor
from .loop_spy import LOOP_MISTAKES, OptimizerSpy, SpyNet, TinyExtractor, TinyTransform, WatchedAdam


STEP_MISTAKES = Mistakes({
    "pixels_optimised": ("the photos get gradients (they are made to require grad)",
                         "the photos are inputs: optimise the network's weights, with the optimiser you are "
                         "given; leave photos.requires_grad alone."),
    "pixels_optimised/optimizer": ("an optimiser over the photos or the picture is made in the step",
                                   "the network's weights are what training changes: use the `optimizer` "
                                   "argument, which holds them."),
    "network_changed/vgg": ("the VGG's weights are optimised (or changed)",
                            "the loss network stays frozen: use the optimiser you are given, which holds only "
                            "the transformation network's weights."),
    "optimizer_recreated": ("a new optimiser is made in every step: Adam's running averages start again each time",
                            "use the `optimizer` argument; the optimiser is made once, before the training loop."),
    "vgg_not_frozen": ("the VGG's weights get gradients",
                       "leave the VGG frozen (its parameters have requires_grad=False): gradients must reach "
                       "the network's weights only."),
    "modifies_input": ("changes the photos or the style targets it was given",
                       "don't write into them: the style targets serve every step."),
    "loss_not_from_network_output/no_call": ("the network is never called on the photos",
                                             "stylised = net(photos), then measure stylised with the extractor."),
    "loss_not_from_network_output": ("the loss is not computed on the network's output (the VGG never sees "
                                     "it with its graph)",
                                     "feats = extractor(net(photos)), without .detach(): the loss must measure "
                                     "what the network paints, so that its gradient reaches the weights."),
    "no_step": ("the network's weights are not updated (optimizer.step() is never called)",
                "call optimizer.step() after loss.backward()."),
    "stepped_twice": ("optimizer.step() is called {count} times in one step", "call it once per training step."),
    "returns_graph": ("returns the loss with its graph (it requires grad)",
                      "return loss.item(): a list of losses that keep their graphs keeps every step's "
                      "activations in memory."),
    "missing_term/content": ("the content term is missing (or zero: is its target computed from the network's "
                             "output instead of the photos?)",
                             "with torch.no_grad(): content_target = extractor(photos)[content_layer]; then "
                             "normalized_content_loss(content_weight, feats[content_layer], content_target)."),
    "missing_term/style": ("the style term is missing from the loss",
                           "add style_loss(feats, style_layers, style_targets, style_weights)."),
    "missing_term/tv": ("the TV term is missing from the loss", "add normalized_tv_loss(stylised, tv_weight)."),
    "wrong_loss": ("the loss is {got:.6g}; the reference step's is {expected:.6g}",
                   "content against the photos' own activations, style against the given targets and weights, "
                   "TV on the network's output, all three measured on net(photos)."),
    "no_gradient": ("when optimizer.step() runs, the weights hold no gradient of this step's loss",
                    "in this order: optimizer.zero_grad(), loss.backward(), optimizer.step()."),
    "wrong_gradient": ("the gradient that optimizer.step() follows is not the gradient of the loss",
                       "call loss.backward() once, on the loss you return, after optimizer.zero_grad()."),
})

GRADIENTS_NOT_ZEROED = ("call optimizer.zero_grad() before loss.backward(): backward adds to the gradients "
                        "that the previous step left on the weights.")


def step_loss(net, extractor, photos, style_targets, style_weights, content_layer=CONTENT_LAYERS[0],
              style_layers=STYLE_LAYERS, content_weight=1.0, tv_weight=3.0):
    """The perceptual loss of ``net`` on a batch of photos: content against the photos, style, TV (notebook 07)."""
    with torch.no_grad():
        content_target = extractor(photos)[content_layer]
    stylised = net(photos)
    feats = extractor(stylised)
    return (losses.normalized_content_loss(content_weight, feats[content_layer], content_target)
            + losses.style_loss(feats, style_layers, style_targets, style_weights)
            + losses.normalized_tv_loss(stylised, tv_weight))


def training_step(net, extractor, optimizer, photos, style_targets, style_weights, content_layer=CONTENT_LAYERS[0],
                  style_layers=STYLE_LAYERS, content_weight=1.0, tv_weight=3.0):
    """One training step of the transformation network ``net`` on a batch of photos; returns the loss (a float).

    extractor: the frozen VGG; optimizer: over ``net``'s weights; style_targets and style_weights: computed
    once, before training.  Introduced in notebook 07.
    """
    loss = step_loss(net, extractor, photos, style_targets, style_weights, content_layer, style_layers,
                     content_weight, tv_weight)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


@reports(STEP_MISTAKES, LOOP_MISTAKES.only("gradients_not_zeroed"), to_tensor)
def check_training_step(fn, graded: bool = True) -> CheckResult:
    """Check ``fn(net, extractor, optimizer, photos, style_targets, style_weights, content_layer, style_layers,
    content_weight, tv_weight)``: one step of training, returning the loss.

    Runs it once on a tiny problem (two photos of 16 x 16 pixels, a two-layer stand-in for VGG) with a
    watched Adam whose weights hold the previous step's gradient.  Introduced in notebook 07.
    """
    g = torch.Generator().manual_seed(SEED)
    photos, painting = torch.rand(2, 3, 16, 16, generator=g), torch.rand(1, 3, 20, 18, generator=g)
    stale = [torch.randn(p.shape, generator=g) for p in TinyTransform().parameters()]
    layers = ("relu2_1", ("relu1_1", "relu2_1"))
    extractor = TinyExtractor().requires_grad_(False)
    with torch.no_grad():
        targets = [losses.gram_matrix(extractor(painting)[layer]) for layer in layers[1]]
    style_weights = losses.normalized_style_weights(10.0 / len(photos), targets)
    settings = (photos, targets, style_weights, *layers, 2.0, 3.0)
    reference_net = TinyTransform()
    expected_loss = step_loss(reference_net, extractor, *settings)
    expected = torch.autograd.grad(expected_loss, list(reference_net.parameters()))
    expected_loss = expected_loss.detach()

    def body():
        net, vgg = TinyTransform(), SpyNet(TinyExtractor().requires_grad_(False))
        optimizer = WatchedAdam(net.parameters(), lr=1e-2)
        for p, grad in zip(net.parameters(), stale):
            p.grad = grad.clone()                               # left over from the previous step
        given = (photos.clone(), [t.clone() for t in targets])
        vgg_weights = [p.detach().clone() for p in vgg.parameters()]
        with OptimizerSpy() as spy:
            got = call(fn, (net, vgg, optimizer, given[0], given[1], *settings[2:]), "")
        _diagnose_step(net, vgg, vgg_weights, optimizer, spy, given)
        if not same(given, (photos, targets)):
            raise STEP_MISTAKES("modifies_input")
        if isinstance(got, torch.Tensor) and got.requires_grad:
            raise STEP_MISTAKES("returns_graph")
        loss = to_tensor(got, expected_loss)
        if loss.numel() != 1 or rel_error(loss.reshape(()), expected_loss) > 1e-4:
            raise _wrong_loss(loss, extractor, reference_net, settings) or STEP_MISTAKES(
                "wrong_loss", got=float(loss.flatten()[0]), expected=float(expected_loss))
        _diagnose_gradient(optimizer.seen[0], expected, stale)
        return "correct (a tiny problem: one step, watched)"
    return run_check("training_step", fn, training_step, graded, body)


def _diagnose_step(net, vgg, vgg_weights, optimizer, spy, given):
    photos = given[0]
    if photos.requires_grad or photos.grad is not None:
        raise STEP_MISTAKES("pixels_optimised")
    network, loss_network = {id(p) for p in net.parameters()}, {id(p) for p in vgg.parameters()}
    for made in spy.optimizers:
        held = [p for group in made.param_groups for p in group["params"]]
        if any(id(p) in loss_network for p in held):
            raise STEP_MISTAKES("network_changed/vgg")
        if any(id(p) not in network for p in held):
            raise STEP_MISTAKES("pixels_optimised/optimizer")
    if spy.optimizers:
        raise STEP_MISTAKES("optimizer_recreated")
    if any(id(p) in loss_network for group in optimizer.param_groups for p in group["params"]) or \
            not same(list(vgg.parameters()), vgg_weights):
        raise STEP_MISTAKES("network_changed/vgg")
    if any(p.requires_grad or p.grad is not None for p in vgg.parameters()):
        raise STEP_MISTAKES("vgg_not_frozen")
    if net.calls == 0:
        raise STEP_MISTAKES("loss_not_from_network_output/no_call")
    if vgg.pixel_calls == 0:
        raise STEP_MISTAKES("loss_not_from_network_output")
    if not optimizer.seen:
        raise STEP_MISTAKES("no_step")
    if len(optimizer.seen) > 1:
        raise STEP_MISTAKES("stepped_twice", count=len(optimizer.seen))


def _wrong_loss(loss, extractor, net, settings):
    photos, targets, weights, content_layer, style_layers, content_weight, tv_weight = settings
    with torch.no_grad():
        stylised = net(photos)
        feats, target = extractor(stylised), extractor(photos)[content_layer]
        content = losses.normalized_content_loss(content_weight, feats[content_layer], target)
        style = losses.style_loss(feats, style_layers, targets, weights)
        tv = losses.normalized_tv_loss(stylised, tv_weight)
    return match(loss.reshape(()), STEP_MISTAKES, [
        ("missing_term/content", style + tv), ("missing_term/style", content + tv),
        ("missing_term/tv", content + style)])


def _diagnose_gradient(grads, expected, stale):
    if any(grad is None for grad in grads) or all(float(grad.abs().max()) == 0 for grad in grads):
        raise STEP_MISTAKES("no_gradient")
    close = lambda a, b: all(rel_error(x, y) < 1e-4 for x, y in zip(a, b))  # noqa: E731
    if close(grads, [e + s for e, s in zip(expected, stale)]):
        raise LOOP_MISTAKES("gradients_not_zeroed", advice=GRADIENTS_NOT_ZEROED)
    if close(grads, stale):
        raise STEP_MISTAKES("no_gradient")
    if not close(grads, expected):
        raise STEP_MISTAKES("wrong_gradient")
