"""The style-transfer loop of Gatys et al.: optimise the pixels of an image.

    result = stylize("chelsea", "swirls")          # example names, paths, URLs or tensors
    result.image                                   # (1, 3, H, W), RGB, [0, 1]
    result.history[-1]                             # {"total": ..., "content": ..., "style": ..., "tv": ...}

How the pieces fit:
  * the targets (content activations, style Gram matrices) are computed once, without gradients;
  * the VGG is frozen; only the pixels ``x`` are optimised, by L-BFGS (default) or Adam;
  * ``steps`` counts loss evaluations (one forward + backward pass), whatever the optimiser.

Loss normalisation -- why the same weights work at every size.  The lesson's raw sums grow with the
number of pixels and differ by orders of magnitude between layers.  Here each content and style term
is divided by the size of its target (sum P^2, sum A^2; ``losses.normalized_content_loss`` and
``normalized_style_weights``) and the TV term is a mean (``normalized_tv_loss``).  Ratios of sums do
not change with H and W, so weights tuned at 256 px keep working at 1024 px, every style layer counts
the same, and the numbers read plainly: 1.0 means "as far from the target as a black image".

Pixel range -- why no clamping between steps.  L-BFGS builds a model of the curvature from the last
few steps; clamping the pixels behind its back makes that model wrong, and the run stalls.  Instead a
smooth penalty, ``RANGE_WEIGHT * (sum of the weights) * mean(relu(x - 1)^2 + relu(-x)^2)``, is part
of the loss, so the optimiser itself brings the pixels back into [0, 1]; early trial steps may overshoot,
the final image is within about 0.01 of the range and is clamped once.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from . import display, examples, images
from .losses import (gram_matrix, normalized_content_loss, normalized_style_weights, normalized_tv_loss,
                     style_loss)
from .vgg import VGGFeatures, default_device

__all__ = ["Settings", "Result", "stylize", "load_any"]

RANGE_WEIGHT = 1e3
GATYS_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass
class Settings:
    """Everything that decides a run: shared by ``stylize``, the notebooks' widgets and the command line."""

    size: int = 256                      # long side of the result, in pixels
    steps: int = 200                     # loss evaluations (forward + backward passes)
    content_layers: Sequence[str] = ("relu4_2",)
    style_layers: Sequence[str] = GATYS_STYLE_LAYERS
    content_weight: float = 1.0
    style_weight: float = 30.0
    tv_weight: float = 3.0
    optimizer: str = "lbfgs"             # "lbfgs" or "adam"
    learning_rate: float | None = None   # None: 1.0 for L-BFGS, 0.02 for Adam
    init: str = "content"                # "content", "noise", "style" (or pass an image to stylize)
    pooling: str = "max"                 # "max" or "avg"
    weights: str = "caffe"               # see VGGFeatures
    style_size: int | None = None        # long side of the style image; None: same as ``size``
    seed: int | None = None
    device: str | None = None            # None: cuda, else mps, else cpu

    def __post_init__(self):
        self.content_layers = tuple([self.content_layers] if isinstance(self.content_layers, str)
                                    else self.content_layers)
        self.style_layers = tuple([self.style_layers] if isinstance(self.style_layers, str)
                                  else self.style_layers)
        if self.optimizer not in ("lbfgs", "adam"):
            raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {self.optimizer!r}")
        if int(self.steps) < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if int(self.size) < 16:
            raise ValueError(f"size must be at least 16 pixels, got {self.size}")
        for name in ("content_weight", "style_weight", "tv_weight"):
            value = getattr(self, name)
            if not (value >= 0 and value < float("inf")):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if not self.content_layers and not self.style_layers:
            raise ValueError("give at least one content layer or one style layer")


@dataclass
class Result:
    """What ``stylize`` returns."""

    image: torch.Tensor                  # (1, 3, H, W), RGB, [0, 1], on the CPU
    history: list[dict[str, float]]     # one entry per loss evaluation
    seconds: float
    settings: Settings
    interrupted: bool = False            # stopped early by Ctrl-C / "interrupt kernel"
    message: str = ""                    # why it stopped early, if it did
    extra: dict = field(default_factory=dict)


class _Stop(Exception):
    """Raised inside the loss evaluation to end the run early."""


_EXTRACTORS: dict[tuple, VGGFeatures] = {}


def _extractor(layers: Sequence[str], weights: str, pooling: str, device: torch.device) -> VGGFeatures:
    """One extractor per (layers, weights, pooling, device), built once per session."""
    key = (tuple(layers), str(weights), pooling, str(device))
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = VGGFeatures(layers, weights=weights, pooling=pooling, device=device)
    return _EXTRACTORS[key]


def load_any(source, size: int | None = None) -> torch.Tensor:
    """An image from anything ``images.load_image`` takes, or an example name (``"chelsea"``)."""
    if isinstance(source, str) and source in examples.names():
        return examples.load(source, size=size)
    return images.load_image(source, size=size)


def stylize(content, style, *, callback: Callable[[int, torch.Tensor, dict], None] | None = None,
            progress: bool = True, preview: bool | int | None = None, **settings) -> Result:
    """Render ``content`` in the style of ``style``.

    content, style: a path, URL, bytes, PIL image, array, (1,3,H,W) tensor or example name.
    settings: any field of ``Settings`` (size, steps, content_weight, style_weight, tv_weight,
    optimizer, init, pooling, weights, style_size, seed, device, ...); ``init`` may also be an image.
    callback(step, image, losses) is called after every loss evaluation.
    progress: a tqdm bar with the current loss.  preview: in a notebook, redraw the image and the loss
    curves in place every ``preview`` steps (True: every 20; None: when ``progress`` is on).
    Returns a ``Result``; Ctrl-C returns the best image so far with ``interrupted=True``.
    """
    init = settings.pop("init", "content")
    init_image = None
    if not (isinstance(init, str) and init in ("content", "noise", "style")):
        init_image, init = init, "image"
    opts = Settings(init=init, **settings)
    device = torch.device(opts.device) if opts.device else default_device()

    content_img = load_any(content, size=opts.size).to(device)
    style_img = load_any(style, size=opts.style_size or opts.size).to(device)
    extractor = _extractor(opts.content_layers + opts.style_layers, opts.weights, opts.pooling, device)

    with torch.no_grad():
        content_feats = extractor(content_img)
        style_feats = extractor(style_img)
    content_targets = [content_feats[name].detach() for name in opts.content_layers]
    style_targets = [gram_matrix(style_feats[name].float()).detach() for name in opts.style_layers]
    style_weights = normalized_style_weights(opts.style_weight, style_targets)

    generator = torch.Generator().manual_seed(opts.seed if opts.seed is not None else 0)
    if init == "content":
        start = content_img.clone()
    elif init == "noise":
        start = torch.rand(content_img.shape, generator=generator).to(device)
    elif init == "style":
        start = F.interpolate(style_img, size=content_img.shape[-2:], mode="bilinear", align_corners=False)
    else:
        start = load_any(init_image).to(device)
        start = F.interpolate(start, size=content_img.shape[-2:], mode="bilinear", align_corners=False)
    x = start.detach().clone().contiguous().requires_grad_(True)

    # The penalty must outweigh the other terms whatever their weights.
    range_weight = RANGE_WEIGHT * (opts.content_weight + opts.style_weight + opts.tv_weight)
    history: list[dict[str, float]] = []
    best = {"loss": float("inf"), "image": x.detach().clone()}
    bar = display.progress_bar(opts.steps) if progress else None
    if preview is None:
        preview = progress
    live = display.LivePreview(every=20 if preview is True else int(preview), total=opts.steps) if preview else None

    def evaluate() -> torch.Tensor:
        if len(history) >= opts.steps:
            raise _Stop()
        feats = extractor(x)
        content = sum(normalized_content_loss(opts.content_weight / len(content_targets), feats[name].float(), target)
                      for name, target in zip(opts.content_layers, content_targets)) if opts.content_layers \
            else x.new_zeros(())
        style = style_loss({name: feats[name].float() for name in opts.style_layers}, opts.style_layers,
                           style_targets, style_weights) if opts.style_layers else x.new_zeros(())
        tv = normalized_tv_loss(x, opts.tv_weight)
        out_of_range = range_weight * (F.relu(x - 1).pow(2) + F.relu(-x).pow(2)).mean()
        total = content + style + tv + out_of_range
        value = float(total.detach())
        if value != value or value in (float("inf"), float("-inf")):
            raise _Stop(f"the loss became {value} at step {len(history) + 1}; returning the last finite image "
                        "(lower the learning rate or the weights)")
        losses = {"total": value, "content": float(content.detach()), "style": float(style.detach()),
                  "tv": float(tv.detach())}
        history.append(losses)
        if value < best["loss"]:
            best["loss"], best["image"] = value, x.detach().clone()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4g}", refresh=False)
        if live is not None:
            live(len(history), x.detach(), losses)
        if callback is not None:
            callback(len(history), x.detach(), losses)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        return total

    optimizer = _make_optimizer(opts, x)
    interrupted, message = False, ""
    started = time.perf_counter()
    try:
        while len(history) < opts.steps:
            before = len(history)
            if opts.optimizer == "lbfgs":
                optimizer.step(evaluate)
            else:
                evaluate()
                optimizer.step()
            if len(history) == before:      # L-BFGS converged and stopped evaluating
                break
    except _Stop as stop:
        message = str(stop)
    except KeyboardInterrupt:
        interrupted, message = True, f"interrupted after {len(history)} of {opts.steps} steps"
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - started
    if message:
        print(message)
    # The lowest loss seen: L-BFGS's last update may not have been evaluated yet.
    image = best["image"]
    return Result(image=image.clamp(0, 1).cpu(), history=history, seconds=seconds, settings=opts,
                  interrupted=interrupted, message=message)


def _make_optimizer(opts: Settings, x: torch.Tensor) -> torch.optim.Optimizer:
    if opts.optimizer == "lbfgs":
        return torch.optim.LBFGS([x], lr=opts.learning_rate or 1.0, max_iter=opts.steps, max_eval=opts.steps,
                                 tolerance_grad=0.0, tolerance_change=0.0, history_size=50)
    return torch.optim.Adam([x], lr=opts.learning_rate or 0.02)


def settings_dict(opts: Settings) -> dict:
    """The settings as a plain dict (for printing, saving next to an image)."""
    return dataclasses.asdict(opts)
