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
``normalized_style_weights``) and the TV term is a mean (``normalized_tv_loss``).  A ratio of two sums
over the same positions does not grow with H and W, so weights tuned at 256 px keep working at 512 px
(the values still drift a little, as a photo shows more detail per feature at higher resolution),
every style layer counts the same, and the numbers read plainly: 1.0 means "as far from the target
as a black image".

Pixel range -- why no clamping between steps.  L-BFGS builds a model of the curvature from the last
few steps; clamping the pixels behind its back makes that model wrong, and the run stalls.  Instead a
smooth penalty, ``RANGE_WEIGHT * (sum of the weights) * mean(relu(x - 1)^2 + relu(-x)^2)``, is part
of the loss, so the optimiser itself brings the pixels back into [0, 1]; early trial steps may overshoot,
the final image is within about 0.01 of the range and is clamped once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from . import controls, display, examples, images
from .losses import (gram_matrix, normalized_content_loss, normalized_style_weights, normalized_tv_loss,
                     style_loss)
from .vgg import VGGFeatures, default_device

__all__ = ["Settings", "Result", "Objective", "stylize", "evaluate_loss", "load_any", "plan_levels"]

RANGE_WEIGHT = 1e3
COARSE_SIZE = 256      # coarse-to-fine starts at or below this long side
COARSE_SHARE = 0.5     # share of the steps spent at the coarser levels
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
    style_size: int | None = None        # long side of the style image in pixels; None: set by style_scale
    style_scale: float = 1.0             # long side of the style image / long side of the result: larger
                                         # values give finer strokes (1.0: the style at the result's size)
    style_blend: Sequence | None = None  # several styles: one weight per style (or per style and layer);
                                         # None: equal weights (see controls.blend_matrix)
    preserve_color: str | None = None    # keep the photo's colours: None, "luminance" or "histogram"
    seed: int | None = None
    device: str | None = None            # None: cuda, else mps, else cpu
    precision: str = "auto"              # VGG in "bf16" or "fp32"; "auto": bf16 where the hardware is fast
    coarse_to_fine: bool | None = None   # start at half size (or less); None: on above COARSE_SIZE,
                                         # unless init is an image

    def __post_init__(self):
        self.content_layers = tuple([self.content_layers] if isinstance(self.content_layers, str)
                                    else self.content_layers)
        self.style_layers = tuple([self.style_layers] if isinstance(self.style_layers, str)
                                  else self.style_layers)
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {self.precision!r}")
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
        if self.preserve_color not in (None,) + controls.COLOUR_METHODS:
            raise ValueError(f"preserve_color must be None, 'luminance' or 'histogram', got {self.preserve_color!r}")
        if isinstance(self.style_scale, bool) or not isinstance(self.style_scale, (int, float)) \
                or not (0 < self.style_scale < float("inf")):
            raise ValueError(f"style_scale must be a number > 0 (1.0: the style image at the result's size), "
                             f"got {self.style_scale!r}")
        if self.style_size is not None and self.style_scale != 1.0:
            raise ValueError("give style_size or style_scale, not both (style_scale = style_size / size)")
        if self.style_blend is not None:  # the number of styles is checked by stylize
            if not isinstance(self.style_blend, (list, tuple, np.ndarray, torch.Tensor)):
                raise ValueError(f"style_blend must be a list of weights, one per style, got {self.style_blend!r}")
            controls.blend_matrix(self.style_blend, len(self.style_blend), self.style_layers)

    @property
    def style_long_side(self) -> int:
        """The long side of the style image(s) at full size, in pixels."""
        return self.style_size or max(16, round(self.style_scale * self.size))


@dataclass
class Result:
    """What ``stylize`` returns."""

    image: torch.Tensor                  # (1, 3, H, W), RGB, [0, 1], on the CPU
    history: list[dict[str, float]]     # one entry per loss evaluation
    seconds: float
    settings: Settings
    interrupted: bool = False            # stopped early by Ctrl-C / "interrupt kernel"
    message: str = ""                    # why it stopped early, if it did
    levels: list = field(default_factory=list)  # [(long side, steps), ...] of a coarse-to-fine run


class _Stop(Exception):
    """Raised inside the loss evaluation to end the run early."""


class _LevelDone(Exception):
    """Raised inside the loss evaluation when a resolution level has used its steps."""


_EXTRACTORS: dict[tuple, VGGFeatures] = {}


def _extractor(layers: Sequence[str], weights: str, pooling: str, device: torch.device) -> VGGFeatures:
    """One extractor per (layers, weights, pooling, device), built once per session."""
    key = (tuple(layers), str(weights), pooling, str(device))
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = VGGFeatures(layers, weights=weights, pooling=pooling, device=device)
    return _EXTRACTORS[key]


def _styles(style) -> list:
    """One style source, or a list/tuple of them, as a list."""
    return list(style) if isinstance(style, (list, tuple)) else [style]


def _prepare(opts: Settings, content, style, masks=None) -> tuple:
    """The extractor, the content image, the style images and the masks at the sizes of ``opts``, on its device.

    Checks the number of blend weights and masks against the number of styles before loading anything.
    """
    styles = _styles(style)
    if not styles:
        raise ValueError("give at least one style image")
    controls.blend_matrix(opts.style_blend, len(styles), opts.style_layers)
    if masks is not None and len(_styles(masks)) != len(styles):
        raise ValueError(f"got {len(_styles(masks))} mask(s) for {len(styles)} style image(s): give one mask "
                         "per style, white where that style applies")
    device = torch.device(opts.device) if opts.device else default_device()
    extractor = _extractor(opts.content_layers + opts.style_layers, opts.weights, opts.pooling, device)
    content_img = load_any(content, size=opts.size).to(device)
    style_imgs = [load_any(source, size=opts.style_long_side).to(device) for source in styles]
    if masks is not None:
        masks = [mask.to(device) for mask in controls.load_masks(_styles(masks), content_img.shape[-2:])]
    return extractor, content_img, style_imgs, masks


def _level_inputs(opts: Settings, content_full: torch.Tensor, styles_full: list, size: int) -> tuple:
    """The content and style images for one resolution level, with the colour control applied.

    The style images shrink with the result, so the strokes keep their size relative to the picture.
    """
    content_img = images.load_image(content_full, size=size).to(content_full.device)
    style_imgs = [images.load_image(style, size=max(16, round(max(style.shape[-2:]) * size / opts.size)))
                  .to(content_full.device) for style in styles_full]
    if opts.preserve_color == "histogram":
        style_imgs = [controls.match_histogram(style, content_img) for style in style_imgs]
    elif opts.preserve_color == "luminance":
        style_imgs = [controls.to_luminance(style, like=content_img) for style in style_imgs]
        content_img = controls.to_luminance(content_img)
    return content_img, style_imgs


def load_any(source, size: int | None = None) -> torch.Tensor:
    """An image from anything ``images.load_image`` takes, or an example name (``"chelsea"``)."""
    if isinstance(source, str) and source in examples.names():
        return examples.load(source, size=size)
    return images.load_image(source, size=size)


def stylize(content, style, *, masks=None, callback: Callable[[int, torch.Tensor, dict], None] | None = None,
            progress: bool = True, preview: bool | int | None = None, **settings) -> Result:
    """Render ``content`` in the style of ``style``.

    content, style: a path, URL, bytes, PIL image, array, (1,3,H,W) tensor or example name; ``style``
    may be a list of them (several styles, mixed by ``style_blend``).
    masks: one mask per style (white where that style applies; see ``controls.load_masks`` for the
    rule on gaps and overlaps); each style's Gram matrices are then computed inside its region only.
    settings: any field of ``Settings`` (size, steps, content_weight, style_weight, tv_weight,
    optimizer, init, pooling, weights, style_size, style_scale, style_blend, preserve_color, seed,
    device, precision, coarse_to_fine, ...); ``init`` may also be an image.
    With ``preserve_color="luminance"`` the optimisation runs on grey images (callbacks see them) and
    the photo's colours are put back at the end.
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
    extractor, content_full, styles_full, masks = _prepare(opts, content, style, masks)
    device = content_full.device
    bf16 = use_bf16(opts.precision, device)
    generator = torch.Generator().manual_seed(opts.seed if opts.seed is not None else 0)
    levels = plan_levels(opts)

    history: list[dict[str, float]] = []
    bar = display.progress_bar(opts.steps) if progress else None
    if preview is None:
        preview = progress
    live = display.LivePreview(every=20 if preview is True else int(preview), total=opts.steps) if preview else None

    def report(x: torch.Tensor, losses: dict[str, float]) -> None:
        history.append(losses)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{losses['total']:.4g}", refresh=False)
        for hook in (live, callback):
            if hook is not None:
                hook(len(history), x, losses)

    best: dict = {}
    interrupted, message = False, ""
    started = time.perf_counter()
    try:
        x = None
        for size, steps in levels:
            content_img, style_imgs = _level_inputs(opts, content_full, styles_full, size)
            if x is None:
                start = _initial_image(init, init_image, content_img, style_imgs[0], generator)
                if opts.preserve_color == "luminance":
                    start = controls.to_luminance(start)
            else:
                start = F.interpolate(x.detach(), size=content_img.shape[-2:], mode="bicubic", align_corners=False)
            objective = Objective(opts, extractor, content_img, style_imgs, bf16=bf16, masks=masks)
            x = _optimise_level(objective, start, len(history) + steps, history, report, best)
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
    # The lowest loss seen at the last level: L-BFGS's last update may not have been evaluated.
    image = best.get("image", content_full)
    if image.shape[-2:] != content_full.shape[-2:]:
        image = F.interpolate(image, size=content_full.shape[-2:], mode="bicubic", align_corners=False)
    if opts.preserve_color == "luminance" and "image" in best:
        image = controls.with_colours_of(image, content_full)
    return Result(image=image.clamp(0, 1).float().cpu(), history=history, seconds=seconds, settings=opts,
                  interrupted=interrupted, message=message, levels=levels)


class Objective:
    """The total loss of Gatys et al. for one content image and one or more style images, at one resolution.

    Targets are computed once, without gradients.  ``objective(x)`` returns the total (a tensor to
    call backward on) and its parts as floats.  With ``bf16`` the VGG runs under bfloat16 autocast;
    Gram matrices and losses are always computed in fp32.

    Several styles: the style loss is the sum of one style loss per style, each measured against its
    own Gram targets and weighted by ``controls.blend_matrix(opts.style_blend, ...)`` (per style and
    layer, summing to 1 at each layer).  masks: one (1, 1, H, W) mask per style (``controls.load_masks``);
    style k then compares the *guided* Gram matrix of x, G = gram(F * m_k) / mean(m_k^2) with m_k
    carried down to each layer, with its style's ordinary Gram matrix.
    """

    def __init__(self, opts: Settings, extractor: VGGFeatures, content_img: torch.Tensor,
                 style_img: torch.Tensor | Sequence[torch.Tensor], bf16: bool = False,
                 masks: Sequence[torch.Tensor] | None = None):
        self.opts, self.extractor, self.bf16 = opts, extractor, bf16
        style_imgs = [style_img] if isinstance(style_img, torch.Tensor) else list(style_img)
        blend = controls.blend_matrix(opts.style_blend, len(style_imgs), opts.style_layers)
        self.style_terms = []  # per style: (layers, Gram targets, weights, masks per layer or None)
        with torch.no_grad():
            content_feats = self._features(content_img)
            for k, image in enumerate(style_imgs):
                style_feats = self._features(image)
                targets = [gram_matrix(style_feats[name]) for name in opts.style_layers]
                weights = [weight * float(share) for weight, share in
                           zip(normalized_style_weights(opts.style_weight, targets), blend[k])]
                used = [i for i, weight in enumerate(weights) if weight > 0]
                layer_masks = None if masks is None else \
                    [controls.mask_at(masks[k], content_feats[opts.style_layers[i]].shape[-2:]) for i in used]
                self.style_terms.append(([opts.style_layers[i] for i in used], [targets[i] for i in used],
                                         [weights[i] for i in used], layer_masks))
        self.content_targets = [content_feats[name] for name in opts.content_layers]
        # The first style's targets and weights, under the names of a one-style objective.
        self.style_targets, self.style_weights = self.style_terms[0][1], self.style_terms[0][2]
        self.content_weight = opts.content_weight / max(1, len(self.content_targets))
        # The range penalty must outweigh the other terms whatever their weights.
        self.range_weight = RANGE_WEIGHT * (opts.content_weight + opts.style_weight + opts.tv_weight)

    def _features(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.autocast(image.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            feats = self.extractor(image)
        return {name: value.float() for name, value in feats.items()}

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        opts = self.opts
        feats = self._features(x)
        content = sum(normalized_content_loss(self.content_weight, feats[name], target)
                      for name, target in zip(opts.content_layers, self.content_targets))
        style = 0.0
        for layers, targets, weights, layer_masks in self.style_terms:
            if layer_masks is None and layers:
                style = style + style_loss(feats, layers, targets, weights)
            elif layers:  # guided Gram matrices: each style measured inside its region only
                style = style + sum(weight * (controls.guided_gram(feats[name], mask) - target).pow(2).sum()
                                    for name, target, weight, mask in zip(layers, targets, weights, layer_masks))
        tv = normalized_tv_loss(x, opts.tv_weight)
        out_of_range = self.range_weight * (F.relu(x - 1).pow(2) + F.relu(-x).pow(2)).mean()
        total = content + style + tv + out_of_range
        parts = {"total": _number(total), "content": _number(content), "style": _number(style), "tv": _number(tv)}
        return total, parts


def evaluate_loss(image: torch.Tensor, content, style, masks=None, **settings) -> dict[str, float]:
    """The loss parts of ``image`` (1,3,H,W) for ``stylize``'s settings, in fp32 at the image's size."""
    opts = Settings(**{**settings, "size": max(image.shape[-2:])})
    extractor, content_full, styles_full, masks = _prepare(opts, content, style, masks)
    content_img, style_imgs = _level_inputs(opts, content_full, styles_full, opts.size)
    objective = Objective(opts, extractor, content_img, style_imgs, bf16=False, masks=masks)
    image = image.to(content_img.device)
    if opts.preserve_color == "luminance":
        image = controls.to_luminance(image)
    with torch.no_grad():
        return objective(image)[1]


def _optimise_level(objective: Objective, start: torch.Tensor, last_step: int, history: list,
                    report: Callable, best: dict) -> torch.Tensor:
    """Optimise the pixels at one resolution until ``len(history) == last_step``; returns the best."""
    x = start.detach().clone().contiguous().requires_grad_(True)
    best.clear()
    best.update(loss=float("inf"), image=x.detach().clone())
    optimizer = _make_optimizer(objective.opts, x, last_step - len(history))

    def evaluate() -> torch.Tensor:
        if len(history) >= last_step:
            raise _LevelDone()
        total, parts = objective(x)
        if not math.isfinite(parts["total"]):
            raise _Stop(f"the loss became {parts['total']} at step {len(history) + 1}; returning the last finite "
                        "image (lower the learning rate or the weights)")
        if parts["total"] < best["loss"]:
            best.update(loss=parts["total"], image=x.detach().clone())
        report(x.detach(), parts)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        return total

    try:
        while len(history) < last_step:
            before = len(history)
            if objective.opts.optimizer == "lbfgs":
                optimizer.step(evaluate)
            else:
                evaluate()
                optimizer.step()
            if len(history) == before:      # L-BFGS converged and stopped evaluating
                break
    except _LevelDone:
        pass
    return best["image"]


def _number(value) -> float:
    return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)


def _initial_image(init: str, init_image, content_img: torch.Tensor, style_img: torch.Tensor,
                   generator: torch.Generator) -> torch.Tensor:
    if init == "content":
        return content_img
    if init == "noise":
        return torch.rand(content_img.shape, generator=generator).to(content_img.device)
    image = style_img if init == "style" else load_any(init_image).to(content_img.device)
    return F.interpolate(image, size=content_img.shape[-2:], mode="bilinear", align_corners=False)


def plan_levels(opts: Settings) -> list[tuple[int, int]]:
    """The resolutions of a run and the steps spent at each: [(long side, steps), ...].

    Coarse-to-fine halves the size (at least once) until it is at most COARSE_SIZE and spends COARSE_SHARE of the steps
    at the coarser levels, where a step costs a quarter (or less) of a full-size step.
    """
    # Auto: on for large outputs, but not when starting from a given image (say, a result to refine).
    auto = opts.size > COARSE_SIZE and opts.init != "image"
    enabled = opts.coarse_to_fine if opts.coarse_to_fine is not None else auto
    sizes = [opts.size]
    if enabled:
        sizes.insert(0, max(16, opts.size // 2))
        while sizes[0] > COARSE_SIZE:
            sizes.insert(0, sizes[0] // 2)
    if len(sizes) == 1 or opts.steps < 2 * len(sizes):
        return [(opts.size, opts.steps)]
    coarse_steps = round(opts.steps * COARSE_SHARE)
    per_level = [coarse_steps // (len(sizes) - 1)] * (len(sizes) - 1)
    return [(size, steps) for size, steps in zip(sizes, per_level)] + [(opts.size, opts.steps - sum(per_level))]


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether the VGG runs in bfloat16: "bf16" yes, "fp32" no, "auto" where the hardware is fast at it.

    "auto" picks bf16 on CUDA GPUs that support it and on CPUs with AMX tiles.  CPUs with only
    AVX-512 BF16 instructions stay in fp32: on them we measured oneDNN's bf16 convolutions 1.5x
    *slower* than fp32 (BENCHMARKS.md).
    """
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
        return bool(amx and amx())
    return False


def _make_optimizer(opts: Settings, x: torch.Tensor, steps: int) -> torch.optim.Optimizer:
    if opts.optimizer == "lbfgs":
        return torch.optim.LBFGS([x], lr=opts.learning_rate or 1.0, max_iter=steps, max_eval=steps,
                                 tolerance_grad=0.0, tolerance_change=0.0, history_size=50)
    return torch.optim.Adam([x], lr=opts.learning_rate or 0.02)

