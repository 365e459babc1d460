"""The style-transfer loop of Gatys et al. (notebook 05): optimise the pixels of an image.

    result = stylize("chelsea", "swirls")          # example names, paths, URLs or tensors
    result.image                                   # (1, 3, H, W), RGB, [0, 1]
    result.history[-1]                             # {"total": ..., "content": ..., "style": ..., "tv": ...}

Read in this order: ``stylize`` (settings -> inputs -> for each level: ``optimise`` -> result), then
``optimise``, the loop of notebook 05 at one size.  The pieces it calls live in files of their own:
``settings`` (``Settings``), ``hardware`` (precision, memory format, memory), ``levels`` (coarse-to-fine) and
``objective`` (the loss).  A callback may end a run early by raising ``StopRun``.

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
smooth penalty, ``RANGE_WEIGHT * (sum of the weights) * mean(relu(x - 1)^2 + relu(-x)^2)``
(``losses.range_penalty``), is part
of the loss, so the optimiser itself brings the pixels back into [0, 1]; early trial steps may overshoot,
the final image is within about 0.01 of the range and is clamped once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from . import controls, display
from .hardware import check_memory, choose_memory_format, choose_precision
from .inputs import load_any, prepare_inputs
from .levels import level_inputs, plan_levels, resize_to
from .objective import Objective
from .settings import Settings, split_init

__all__ = ["stylize", "Result", "StopRun"]


@dataclass
class Result:
    """What ``stylize`` returns (notebook 05)."""

    image: torch.Tensor                  # (1, 3, H, W), RGB, [0, 1], on the CPU
    history: list[dict[str, float]]     # one entry per loss evaluation
    seconds: float
    settings: Settings
    interrupted: bool = False            # stopped early by Ctrl-C / "interrupt kernel"
    message: str = ""                    # why it stopped early, if it did
    levels: list = field(default_factory=list)  # [(long side, steps), ...] of a coarse-to-fine run
    precision: str = ""                  # "bf16" or "fp32": how the VGG ran, and why
    memory_format: str = ""              # "nchw" or "channels_last": the VGG's layout, and why
    stopped: str = ""                    # why the run ended (all steps done, the loss levelled off, ...)


class StopRun(Exception):
    """Raise it from a ``stylize`` callback to end the run: the result is the best image so far (notebook 05).

    Its message becomes the result's ``stopped`` and ``message``.  The loop raises it too, when the loss
    stops being a finite number.
    """


class _LevelDone(Exception):
    """Raised inside the loss evaluation when a resolution level has used its steps or levelled off."""


def stylize(content, style, *, masks=None, callback: Callable[[int, torch.Tensor, dict], None] | None = None,
            progress: bool = True, preview: bool | int | None = None, **settings) -> Result:
    """Render ``content`` in the style of ``style`` (notebook 05; the controls of notebook 06).

    content, style: a path, URL, bytes, PIL image, array, (1,3,H,W) tensor or example name; ``style`` may be a
    list (several styles, mixed by ``style_blend``).  masks: one per style (``controls.load_masks``); each
    style's Gram matrices are then computed inside its region only.  settings: any field of ``Settings``;
    ``init`` may also be an image.  With ``preserve_color="luminance"`` the loop runs on grey images and the
    photo's colours are put back at the end.  callback(step, image, losses) runs after every loss evaluation
    and may raise ``StopRun``.  progress: a tqdm bar; preview: redraw the image and the loss curves in a
    notebook every ``preview`` steps (True: 20; None: when ``progress`` is on).  Returns a ``Result``; Ctrl-C
    returns the best image so far with ``interrupted=True``.  MemoryError before any work when it cannot fit.
    """
    init, init_image = split_init(settings.pop("init", "content"))
    opts = Settings(init=init, **settings)
    check_memory(opts)
    extractor, content_full, styles_full, masks = prepare_inputs(opts, content, style, masks)
    bf16, precision = choose_precision(opts.precision, content_full.device)
    channels_last, memory_format = choose_memory_format(opts.memory_format, content_full.device, bf16)
    generator = torch.Generator().manual_seed(opts.seed if opts.seed is not None else 0)
    levels = plan_levels(opts)
    report = _Report(opts.steps, progress, preview, callback)
    image, outcome = None, None
    started = time.perf_counter()
    try:
        for level, (size, steps) in enumerate(levels):
            content_img, style_imgs = level_inputs(opts, content_full, styles_full, size)
            start = (_first_image(opts, init_image, content_img, style_imgs[0], generator) if image is None
                     else resize_to(image, content_img))
            objective = Objective(opts, extractor, content_img, style_imgs, bf16=bf16, masks=masks,
                                  channels_last=channels_last)
            # The last level may use the steps that a coarser one saved by stopping early.
            last_step = opts.steps if level == len(levels) - 1 else len(report.history) + steps
            outcome = optimise(objective, start, last_step, report)
            image = outcome.image
            if outcome.ends_run:
                break
    except KeyboardInterrupt:
        outcome = _LevelResult(image, "", ends_run="interrupted")
    finally:
        report.close()
    seconds = time.perf_counter() - started
    stopped, message = _why_it_ended(outcome, len(report.history), opts.steps)
    if message:
        print(message)
    return Result(image=_final_image(opts, image, content_full), history=report.history, seconds=seconds,
                  settings=opts, interrupted=outcome.ends_run == "interrupted", message=message, levels=levels,
                  precision=precision, memory_format=memory_format, stopped=stopped)


@dataclass
class _LevelResult:
    """What ``optimise`` returns: the lowest-loss image of the level, why the level ended, and whether the run
    ends with it ("stopped": a ``StopRun``; "interrupted": Ctrl-C)."""

    image: torch.Tensor | None
    stopped: str
    ends_run: str = ""


def optimise(objective: Objective, start: torch.Tensor, last_step: int, report: _Report) -> _LevelResult:
    """The loop of notebook 05 at one resolution: optimise the pixels, starting from ``start``.

    Runs until ``len(report.history) == last_step`` or the loss levels off: the best loss of this level fell by
    less than ``stop_tolerance`` (a fraction of it) over the last ``stop_window`` steps.  ``report(x, losses)``
    is called after every loss evaluation.  Returns the lowest-loss image seen (L-BFGS's last update may not
    have been evaluated) and why the level ended.
    """
    opts, history = objective.opts, report.history
    x = start.detach().clone().contiguous().requires_grad_(True)
    optimizer = _make_optimizer(opts, x, last_step - len(history))
    best_loss, best_image = float("inf"), x.detach().clone()
    bests: list[float] = []                  # best loss of this level after each of its steps

    def closure() -> torch.Tensor:
        nonlocal best_loss, best_image
        if len(history) >= last_step:
            raise _LevelDone("all steps done")
        if opts.stop_tolerance and levelled_off(bests, opts.stop_tolerance, opts.stop_window):
            raise _LevelDone(f"the loss fell by less than {opts.stop_tolerance:.1%} over the last "
                             f"{opts.stop_window} steps")
        total, parts = objective(x)
        if not math.isfinite(parts["total"]):
            raise StopRun(f"the loss became {parts['total']} at step {len(history) + 1}; returning the last "
                          "finite image (lower the learning rate or the weights)")
        if parts["total"] < best_loss:
            best_loss, best_image = parts["total"], x.detach().clone()
        bests.append(best_loss)
        report(x.detach(), parts)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        return total

    try:
        while len(history) < last_step:
            before = len(history)
            if opts.optimizer == "lbfgs":
                optimizer.step(closure)
            else:
                closure()
                optimizer.step()
            if len(history) == before:      # L-BFGS converged and stopped evaluating
                return _LevelResult(best_image, "L-BFGS converged")
    except _LevelDone as done:
        return _LevelResult(best_image, str(done))
    except StopRun as stop:
        return _LevelResult(best_image, str(stop), ends_run="stopped")
    except KeyboardInterrupt:
        return _LevelResult(best_image, "", ends_run="interrupted")
    return _LevelResult(best_image, "all steps done")


def levelled_off(bests: list[float], tolerance: float, window: int) -> bool:
    """The stopping rule: the best loss fell by less than ``tolerance`` (a fraction of it) over ``window`` steps.

    bests: the best loss after each step of the level so far.
    Introduced in notebook 05.
    """
    return len(bests) > window and bests[-1 - window] - bests[-1] < tolerance * abs(bests[-1])


class _Report:
    """Called after every loss evaluation: keeps the history, moves the progress bar, redraws the preview and
    calls the callback."""

    def __init__(self, total: int, progress: bool, preview: bool | int | None, callback: Callable | None):
        self.history: list[dict[str, float]] = []
        self.bar = display.progress_bar(total) if progress else None
        if preview is None:
            preview = progress
        self.live = display.LivePreview(every=20 if preview is True else int(preview), total=total) if preview \
            else None
        self.callback = callback

    def __call__(self, x: torch.Tensor, losses: dict[str, float]) -> None:
        self.history.append(losses)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{losses['total']:.4g}", refresh=False)
        for hook in (self.live, self.callback):
            if hook is not None:
                hook(len(self.history), x, losses)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _why_it_ended(outcome: _LevelResult, done: int, steps: int) -> tuple[str, str]:
    """(the result's ``stopped``, the message printed when the run ended early)."""
    if outcome.ends_run == "stopped":
        return outcome.stopped, outcome.stopped
    if outcome.ends_run == "interrupted":
        message = (f"interrupted after {done} of {steps} steps" if done
                   else "interrupted before the first step finished")
        return message, message
    return f"{outcome.stopped} ({done} of at most {steps} steps)", ""


def _final_image(opts: Settings, image: torch.Tensor | None, content_full: torch.Tensor) -> torch.Tensor:
    """The result at full size, in the photo's colours where asked, clamped once, on the CPU.

    No image (stopped before the first level began): the content image."""
    if image is None:
        return content_full.clamp(0, 1).float().cpu()
    if image.shape[-2:] != content_full.shape[-2:]:
        image = resize_to(image, content_full)
    if opts.preserve_color == "luminance":
        image = controls.with_colours_of(image, content_full)
    return image.clamp(0, 1).float().cpu()


def _first_image(opts: Settings, init_image, content_img: torch.Tensor, style_img: torch.Tensor,
                 generator: torch.Generator) -> torch.Tensor:
    """The start of the first level: the content, noise, the style or a given image (grey for "luminance")."""
    if opts.init == "content":
        image = content_img
    elif opts.init == "noise":
        image = torch.rand(content_img.shape, generator=generator).to(content_img.device)
    else:
        image = style_img if opts.init == "style" else load_any(init_image).to(content_img.device)
        image = F.interpolate(image, size=content_img.shape[-2:], mode="bilinear", align_corners=False)
    return controls.to_luminance(image) if opts.preserve_color == "luminance" else image


def _make_optimizer(opts: Settings, x: torch.Tensor, steps: int) -> torch.optim.Optimizer:
    if opts.optimizer == "lbfgs":
        return torch.optim.LBFGS([x], lr=opts.learning_rate or 1.0, max_iter=steps, max_eval=steps,
                                 tolerance_grad=0.0, tolerance_change=0.0, history_size=50)
    return torch.optim.Adam([x], lr=opts.learning_rate or 0.02)
