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
as activations that are all zero" (not a black image: VGG subtracts the mean colour first, so a
black image has activations far from zero).

Pixel range -- why no clamping between steps.  L-BFGS builds a model of the curvature from the last
few steps; clamping the pixels behind its back makes that model wrong, and the run stalls.  Instead a
smooth penalty, ``RANGE_WEIGHT * (sum of the weights) * mean(relu(x - 1)^2 + relu(-x)^2)``, is part
of the loss, so the optimiser itself brings the pixels back into [0, 1]; early trial steps may overshoot,
the final image is within about 0.01 of the range and is clamped once.
"""

from __future__ import annotations

import difflib
import math
import numbers
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import controls, display, examples, images
from .losses import (gram_matrix, normalized_content_loss, normalized_style_weights, normalized_tv_loss,
                     style_loss)
from .vgg import VGGFeatures, default_device, layer_names

__all__ = ["Settings", "Result", "Objective", "stylize", "evaluate_loss", "load_any", "plan_levels",
           "estimate_memory_gb", "available_memory_gb", "largest_size_that_fits", "check_memory", "pad_to_multiple",
           "choose_precision"]

RANGE_WEIGHT = 1e3
COARSE_SIZE = 256      # coarse-to-fine starts at or below this long side
COARSE_SHARE = 0.7     # share of the steps spent at the coarser levels (BENCHMARKS.md, R2: 0.5 cost more
                       # for no visible gain)
GATYS_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
MIN_SIZE = 16          # below this, VGG-19's pooling layers leave nothing of the image
WEIGHT_NAMES = ("caffe", "torchvision", "random")
# Peak memory of a run (BENCHMARKS.md, peak RSS by size, fp32 on a CPU): about 0.9 GB for Python, torch and the
# weights, plus about 2.6 GB per million pixels of the result, the activations kept for the backward pass.
BASE_MEMORY_GB = 0.9
MEMORY_GB_PER_MEGAPIXEL = 2.6


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
                                         # values give larger strokes (1.0: the style at the result's size)
    style_blend: Sequence | None = None  # several styles: one weight per style (or per style and layer);
                                         # None: equal weights (see controls.blend_matrix)
    preserve_color: str | None = None    # keep the photo's colours: None, "luminance" or "histogram"
    seed: int | None = None
    device: str | None = None            # None: cuda, else mps, else cpu
    precision: str = "auto"              # VGG in "bf16" or "fp32"; "auto": bf16 where the hardware is fast
    coarse_to_fine: bool | None = None   # start at half size (or less); None: on above COARSE_SIZE,
                                         # unless init is an image
    stop_tolerance: float = 0.0          # stop a level when the best loss fell by less than this fraction
    stop_window: int = 20                # ... over the last stop_window steps; 0 tolerance: run all steps

    def __post_init__(self):
        self.content_layers = tuple([self.content_layers] if isinstance(self.content_layers, str)
                                    else self.content_layers)
        self.style_layers = tuple([self.style_layers] if isinstance(self.style_layers, str)
                                  else self.style_layers)
        _check_whole("size", self.size, MIN_SIZE, " pixels")
        _check_whole("steps", self.steps, 1)
        if self.style_size is not None:
            _check_whole("style_size", self.style_size, MIN_SIZE, " pixels")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral)
                                      or not 0 <= self.seed < 2**64):
            raise ValueError(f"seed must be a whole number from 0 to 2**64 - 1, or None, got {self.seed!r}")
        if self.learning_rate is not None and not (0 < self.learning_rate < float("inf")):
            raise ValueError(f"learning_rate must be a number > 0 (or None for the default), got {self.learning_rate}")
        _check_choice("pooling", self.pooling, ("max", "avg"))
        _check_choice("init", self.init, ("content", "noise", "style", "image"))
        if self.coarse_to_fine not in (None, True, False):
            raise ValueError(f"coarse_to_fine must be True, False or None (automatic), got {self.coarse_to_fine!r}")
        for name in self.content_layers + self.style_layers:
            _check_choice("layer", name, layer_names(), "see nst_helpers.layer_names()")
        if not (isinstance(self.weights, (str, os.PathLike)) and
                (self.weights in WEIGHT_NAMES or os.path.isfile(self.weights))):
            _check_choice("weights", self.weights, WEIGHT_NAMES, "or the path of an existing weight file")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {self.precision!r}")
        if self.optimizer not in ("lbfgs", "adam"):
            raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {self.optimizer!r}")
        if not (0 <= self.stop_tolerance < 1):
            raise ValueError(f"stop_tolerance must be a fraction in [0, 1), got {self.stop_tolerance!r}")
        _check_whole("stop_window", self.stop_window, 1)
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


def _check_whole(name: str, value, low: int, unit: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be a whole number, at least {low}{unit}, got {value!r}")


def _check_choice(name: str, value, choices, other: str = "") -> None:
    if value in choices:
        return
    close = difflib.get_close_matches(value, choices, n=1) if isinstance(value, str) else []
    hint = f"did you mean {close[0]!r}? " if close else ""
    names = [repr(choice) for choice in choices]
    if len(names) > 9:                                   # too many to list (layer names)
        advice = other
    elif other:
        advice = f"use {', '.join(names)} {other}"
    else:
        advice = f"use {', '.join(names[:-1])} or {names[-1]}"
    raise ValueError(f"unknown {name} {value!r}: {hint}{advice}")


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
    precision: str = ""                  # "bf16" or "fp32": how the VGG ran, and why
    stopped: str = ""                    # why the run ended (all steps done, the loss levelled off, ...)


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

    Checks the number of blend weights and masks against the number of styles, and loads the images, before
    the network is built.
    """
    styles = _styles(style)
    if not styles:
        raise ValueError("give at least one style image")
    controls.blend_matrix(opts.style_blend, len(styles), opts.style_layers)
    if masks is not None and len(_styles(masks)) != len(styles):
        raise ValueError(f"got {len(_styles(masks))} mask(s) for {len(styles)} style image(s): give one mask "
                         "per style, white where that style applies")
    content_img = _load_role(content, opts.size, "content")
    style_imgs = [_load_role(source, opts.style_long_side, "style") for source in styles]
    device = torch.device(opts.device) if opts.device else default_device()
    extractor = _extractor(opts.content_layers + opts.style_layers, opts.weights, opts.pooling, device)
    content_img, style_imgs = content_img.to(device), [style.to(device) for style in style_imgs]
    if masks is not None:
        masks = [mask.to(device) for mask in controls.load_masks(_styles(masks), content_img.shape[-2:])]
    return extractor, content_img, style_imgs, masks


def _load_role(source, size: int, role: str) -> torch.Tensor:
    """``load_any``, with errors about the pixels (NaN, wrong shape, ...) naming the image."""
    try:
        return load_any(source, size=size)
    except ValueError as err:
        raise ValueError(f"the {role} image: {err}") from None


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
    device, precision, coarse_to_fine, stop_tolerance, stop_window, ...); ``init`` may also be an image.
    With ``preserve_color="luminance"`` the optimisation runs on grey images (callbacks see them) and
    the photo's colours are put back at the end.
    callback(step, image, losses) is called after every loss evaluation.
    progress: a tqdm bar with the current loss.  preview: in a notebook, redraw the image and the loss
    curves in place every ``preview`` steps (True: every 20; None: when ``progress`` is on).
    Returns a ``Result`` (``precision`` and ``stopped`` say how the VGG ran and why the run ended);
    Ctrl-C returns the best image so far with ``interrupted=True`` (the content image and an empty
    ``history`` when no step had finished).  Raises MemoryError before any work when
    the run would not fit in memory (``check_memory``).
    """
    init = settings.pop("init", "content")
    init_image = None
    if not (isinstance(init, str) and init in ("content", "noise", "style")):
        init_image, init = init, "image"
    opts = Settings(init=init, **settings)
    check_memory(opts)
    extractor, content_full, styles_full, masks = _prepare(opts, content, style, masks)
    device = content_full.device
    bf16, precision = choose_precision(opts.precision, device)
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
    interrupted, message, stopped = False, "", ""
    started = time.perf_counter()
    try:
        x = None
        for level, (size, steps) in enumerate(levels):
            content_img, style_imgs = _level_inputs(opts, content_full, styles_full, size)
            if x is None:
                start = _initial_image(init, init_image, content_img, style_imgs[0], generator)
                if opts.preserve_color == "luminance":
                    start = controls.to_luminance(start)
            else:
                start = F.interpolate(x.detach(), size=content_img.shape[-2:], mode="bicubic", align_corners=False)
            objective = Objective(opts, extractor, content_img, style_imgs, bf16=bf16, masks=masks)
            # The last level may use the steps that a coarser one saved by stopping early.
            last_step = opts.steps if level == len(levels) - 1 else len(history) + steps
            x, stopped = _optimise_level(objective, start, last_step, history, report, best)
        stopped = f"{stopped} ({len(history)} of at most {opts.steps} steps)"
    except _Stop as stop:
        message = stopped = str(stop)
    except KeyboardInterrupt:
        interrupted, message = True, (f"interrupted after {len(history)} of {opts.steps} steps" if history
                                      else "interrupted before the first step finished")
        stopped = message
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
                  interrupted=interrupted, message=message, levels=levels, precision=precision, stopped=stopped)


class Objective:
    """The total loss of Gatys et al. for one content image and one or more style images, at one resolution.

    Targets are computed once, without gradients.  ``objective(x)`` returns the total (a tensor to
    call backward on) and its parts as floats.  With ``bf16`` the VGG runs under bfloat16 autocast;
    Gram matrices and losses are always computed in fp32.  Every image goes through the VGG padded to
    a multiple of 16 pixels (``pad_to_multiple``), so that its edges are stylised like its interior.

    Several styles: the style loss is the sum of one style loss per style, each measured against its
    own Gram targets and weighted by ``controls.blend_matrix(opts.style_blend, ...)`` (per style and
    layer, summing to 1 at each layer).  masks: one (1, 1, H, W) mask per style (``controls.load_masks``);
    style k then compares the *guided* Gram matrix of x, G = gram(F * m_k) / mean(m_k^2) with m_k
    carried down to each layer, with its style's ordinary Gram matrix, its weights scaled by
    ``controls.mask_strength(m_k)``.
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
                    [controls.mask_at(pad_to_multiple(masks[k]), content_feats[opts.style_layers[i]].shape[-2:])
                     for i in used]
                strength = 1.0 if masks is None else controls.mask_strength(masks[k])  # a grey mask: less style
                self.style_terms.append(([opts.style_layers[i] for i in used], [targets[i] for i in used],
                                         [weights[i] * strength for i in used], layer_masks))
        self.content_targets = [content_feats[name] for name in opts.content_layers]
        # The first style's targets and weights, under the names of a one-style objective.
        self.style_targets, self.style_weights = self.style_terms[0][1], self.style_terms[0][2]
        self.content_weight = opts.content_weight / max(1, len(self.content_targets))
        # The range penalty must outweigh the other terms whatever their weights.
        self.range_weight = RANGE_WEIGHT * (opts.content_weight + opts.style_weight + opts.tv_weight)

    def _features(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.autocast(image.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            feats = self.extractor(pad_to_multiple(image))
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


def pad_to_multiple(image: torch.Tensor, multiple: int = 16) -> torch.Tensor:
    """``image`` (N,C,H,W) extended at the bottom and right to a multiple of ``multiple`` pixels, by reflection.

    Why: VGG-19 halves the image in four pooling layers before relu5_1, and each drops an odd last row
    or column.  Without padding, the rows and columns beyond the last whole 16 x 16 cell reach the deep
    layers weakly or not at all, so the style barely touches them and they keep the content's colours
    (a band along the bottom of a 256 x 170 result).  Padded, every pixel reaches every layer.
    Why reflection: the added pixels carry the image's own colours and texture, so the Gram matrices
    see no black border (zeros would).  Why padding rather than sizes rounded to a multiple of 16: the
    result keeps the size and aspect ratio asked for; the padding is only seen by the VGG and costs a
    few per cent more work.  Why the added pixels pass no gradient back: mirrored, the last rows would
    count twice in the loss and come out over-styled (a blue strip instead of a brown one).  Images too
    small to reflect (a side shorter than its padding) repeat their last row and column instead.
    """
    height, width = image.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h == 0 and pad_w == 0:
        return image
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    padded = F.pad(image.detach(), (0, pad_w, 0, pad_h), mode=mode)
    padded[..., :height, :width] = image    # gradients reach the image only through its own pixels
    return padded


def estimate_memory_gb(height: int, width: int) -> float:
    """Peak memory of a run whose result is ``height`` x ``width`` pixels, in GB (2**30 bytes).

    A straight line through the peaks measured on a CPU in fp32 (BENCHMARKS.md: 1.37 GB at 512 x 341,
    4.93 GB at 1536 x 1022): BASE_MEMORY_GB for Python, torch and the weights, plus
    MEMORY_GB_PER_MEGAPIXEL for every million pixels, the activations that the backward pass needs.
    """
    return BASE_MEMORY_GB + MEMORY_GB_PER_MEGAPIXEL * height * width / 1e6


def available_memory_gb(device: torch.device | str | None = None) -> float | None:
    """Memory a run can still use on ``device``, in GB; None when unknown (then nothing is checked).

    CUDA: the GPU's free memory.  CPU on Linux: MemAvailable, lowered by a cgroup limit (containers) or
    an address-space limit (``ulimit -v``) when there is one.  Elsewhere: None.
    """
    device = torch.device(device) if device is not None else default_device()
    if device.type == "cuda":
        try:
            return torch.cuda.mem_get_info(device)[0] / 2**30
        except (RuntimeError, AssertionError):  # no usable GPU: the run itself will say so
            return None
    if device.type != "cpu":
        return None
    try:
        free = [_kib_line("/proc/meminfo", "MemAvailable:") * 1024]
    except (OSError, ValueError, IndexError):
        return None
    try:
        limit, used = (Path("/sys/fs/cgroup/memory.max").read_text().strip(),
                       Path("/sys/fs/cgroup/memory.current").read_text().strip())
        if limit.isdigit():
            free.append(int(limit) - int(used))
    except (OSError, ValueError):
        pass
    try:
        import resource
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            free.append(soft - _kib_line("/proc/self/status", "VmSize:") * 1024)
    except (ImportError, OSError, ValueError, IndexError):
        pass
    return max(0.0, min(free)) / 2**30


def _kib_line(path: str, key: str) -> int:
    line = next(line for line in Path(path).read_text().splitlines() if line.startswith(key))
    return int(line.split()[1])


def largest_size_that_fits(available_gb: float) -> int:
    """The largest size (long side, a multiple of 16) of a square result that fits in ``available_gb``."""
    side = math.sqrt(max(0.0, available_gb) / MEMORY_GB_PER_MEGAPIXEL * 1e6)
    return max(MIN_SIZE, int(side) // 16 * 16)


def check_memory(opts: Settings) -> None:
    """Raise MemoryError (one line, with the largest size that fits) when a run of ``opts`` would not fit.

    The image's aspect ratio is not known before it is loaded, so this assumes a square of the larger of
    ``size`` and the style's side (``style_size``, or ``style_scale`` times ``size``): a bound from above.
    Python, torch and the weights are already loaded, so only the growing part of ``estimate_memory_gb`` is
    compared with what is available.
    """
    available = available_memory_gb(opts.device)
    if available is None:
        return
    style_name = "style_size" if opts.style_size else "style_scale"  # the style's side, however it was set
    name, side = max(("size", opts.size), (style_name, opts.style_long_side), key=lambda pair: pair[1])
    needed = estimate_memory_gb(side, side) - BASE_MEMORY_GB
    if needed > available:
        largest = largest_size_that_fits(available)
        asked, fits = (f"{opts.style_scale:g} (a {side} px style image)", f"{largest / opts.size:.2f}") \
            if name == "style_scale" else (side, largest)
        raise MemoryError(f"{name}={asked} needs about {needed:.1f} GB of memory for a square image but "
                          f"{available:.1f} GB are available: use {name}={fits} or less")


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
                    report: Callable, best: dict) -> tuple[torch.Tensor, str]:
    """Optimise the pixels at one resolution until ``len(history) == last_step`` or the loss levels off.

    Returns the best image and why the level ended.  Levelling off (``opts.stop_tolerance > 0``): the best loss
    of this level fell by less than ``stop_tolerance`` (a fraction of it) over the last ``stop_window`` steps.
    """
    opts = objective.opts
    x = start.detach().clone().contiguous().requires_grad_(True)
    best.clear()
    best.update(loss=float("inf"), image=x.detach().clone())
    optimizer = _make_optimizer(opts, x, last_step - len(history))
    bests: list[float] = []                  # best loss of this level after each of its steps

    def evaluate() -> torch.Tensor:
        if len(history) >= last_step:
            raise _LevelDone("all steps done")
        if opts.stop_tolerance and len(bests) > opts.stop_window:
            earlier, now = bests[-1 - opts.stop_window], bests[-1]
            if earlier - now < opts.stop_tolerance * abs(now):
                raise _LevelDone(f"the loss fell by less than {opts.stop_tolerance:.1%} over the last "
                                 f"{opts.stop_window} steps")
        total, parts = objective(x)
        if not math.isfinite(parts["total"]):
            raise _Stop(f"the loss became {parts['total']} at step {len(history) + 1}; returning the last finite "
                        "image (lower the learning rate or the weights)")
        if parts["total"] < best["loss"]:
            best.update(loss=parts["total"], image=x.detach().clone())
        bests.append(best["loss"])
        report(x.detach(), parts)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        return total

    reason = "all steps done"
    try:
        while len(history) < last_step:
            before = len(history)
            if opts.optimizer == "lbfgs":
                optimizer.step(evaluate)
            else:
                evaluate()
                optimizer.step()
            if len(history) == before:      # L-BFGS converged and stopped evaluating
                reason = "L-BFGS converged"
                break
    except _LevelDone as done:
        reason = str(done)
    return best["image"], reason


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


PROBE_MARGIN = 1.2     # "auto" picks bf16 only where the probe runs at least this much faster in it
_PRECISION_CHOICES: dict[str, tuple[bool, str]] = {}   # device -> (bf16?, why), measured once per process


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether the VGG runs in bfloat16: "bf16" yes, "fp32" no, "auto" where a probe measured it faster."""
    return choose_precision(precision, device)[0]


def choose_precision(precision: str, device: torch.device) -> tuple[bool, str]:
    """(bf16?, why).  "auto" times a small convolution forward + backward in both precisions on first use
    per device (tens of milliseconds) and keeps the answer for the process.

    Why measure: the same bf16 instructions are 2x faster than fp32 on one CPU, 1.6x slower on another and
    ~150x slower where they are emulated (BENCHMARKS.md); no flag tells these apart reliably.
    """
    if precision != "auto":
        return precision == "bf16", f"{precision}, as asked"
    key = str(device)
    if key not in _PRECISION_CHOICES:
        _PRECISION_CHOICES[key] = _probe_precision(device)
    return _PRECISION_CHOICES[key]


def _probe_precision(device: torch.device) -> tuple[bool, str]:
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return False, "fp32: this GPU has no bf16"

    def fastest(bf16: bool, side: int, repeats: int) -> float:   # the minimum: other work only adds time
        return min(_probe_seconds(device, bf16, side) for _ in range(repeats))

    threads = torch.get_num_threads()
    torch.set_num_threads(1)     # one core: the ratio is the same, and other programs' load disturbs it less
    try:
        fastest(False, 16, 1), fastest(True, 16, 1)                # warm-up (first calls set up kernels)
        tiny_fp32, tiny_bf16 = fastest(False, 16, 2), fastest(True, 16, 2)
        if tiny_bf16 > 5 * tiny_fp32:                               # emulated: don't time anything bigger
            return False, f"fp32: bf16 was {tiny_bf16 / tiny_fp32:.0f}x slower on a tiny convolution"
        side = 32 if device.type == "cpu" else 128
        fp32 = bf16 = float("inf")
        for _ in range(4):                                          # interleaved, so that load hits both
            fp32, bf16 = min(fp32, fastest(False, side, 1)), min(bf16, fastest(True, side, 1))
    except RuntimeError as err:                                     # e.g. no bf16 kernels on this device
        return False, f"fp32: bf16 failed ({' '.join(str(err).split())[:80]})"
    finally:
        torch.set_num_threads(threads)
    speed = fp32 / bf16
    chosen = "bf16" if speed >= PROBE_MARGIN else "fp32"
    return chosen == "bf16", f"{chosen}: a probe convolution ran {speed:.2f}x as fast in bf16 as in fp32 " \
                             f"({bf16 * 1e3:.1f} vs {fp32 * 1e3:.1f} ms)"


def _probe_seconds(device: torch.device, bf16: bool, side: int) -> float:
    """Seconds for two 3x3 convolutions (64 channels, side x side pixels) forward and backward."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, 64, side, side, generator=generator).to(device).requires_grad_(True)
    weight = (torch.randn(64, 64, 3, 3, generator=generator) * 0.05).to(device)
    # On the CPU (one thread, see _probe_precision) count the CPU time of this thread: time spent waiting
    # while other programs run does not count.  Elsewhere, wall time after the device has finished.
    clock = time.thread_time if device.type == "cpu" else time.perf_counter
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    started = clock()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        y = F.conv2d(F.relu(F.conv2d(x, weight, padding=1)), weight, padding=1)
    y.float().square().mean().backward()
    sync()
    return clock() - started


def _make_optimizer(opts: Settings, x: torch.Tensor, steps: int) -> torch.optim.Optimizer:
    if opts.optimizer == "lbfgs":
        return torch.optim.LBFGS([x], lr=opts.learning_rate or 1.0, max_iter=steps, max_eval=steps,
                                 tolerance_grad=0.0, tolerance_change=0.0, history_size=50)
    return torch.optim.Adam([x], lr=opts.learning_rate or 0.02)

