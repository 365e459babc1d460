"""The settings of a run (notebook 05): one dataclass shared by ``stylize``, the notebooks' widgets and the CLI.

Every field has a default and a comment saying what it does; ``Settings(...)`` checks them all, so a bad
value fails at once with a one-line message, before any image is loaded or network built.
"""

from __future__ import annotations

import difflib
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from . import controls
from .levels import COARSE_SHARE
from .setting_errors import SettingError
from .vgg import layer_names

__all__ = ["Settings", "GATYS_STYLE_LAYERS", "split_init"]

GATYS_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
MIN_SIZE = 16          # below this, VGG-19's pooling layers leave nothing of the image
WEIGHT_NAMES = ("caffe", "torchvision", "random")
INIT_NAMES = ("content", "noise", "style")
MEMORY_FORMATS = ("auto", "nchw", "contiguous", "channels_last")


@dataclass
class Settings:
    """Everything that decides a run (notebook 05): shared by ``stylize``, the notebooks' widgets and the CLI."""

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
    memory_format: str = "auto"          # VGG's layout: "nchw" (or "contiguous") or "channels_last";
                                         # "auto": channels_last where a probe finds it faster
    coarse_to_fine: bool | None = None   # start at half size (or less); None: on above COARSE_SIZE,
                                         # unless init is an image
    coarse_share: float = COARSE_SHARE   # share of the steps spent at the coarser levels
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
            raise SettingError(lambda n: f"{n('seed')} must be a whole number from 0 to 2**64 - 1, or None, "
                               f"got {self.seed!r}")
        if self.learning_rate is not None and not (0 < self.learning_rate < float("inf")):
            raise SettingError(lambda n: f"{n('learning_rate')} must be a number > 0 (or None for the default), "
                               f"got {self.learning_rate}")
        _check_choice("pooling", self.pooling, ("max", "avg"))
        _check_choice("init", self.init, INIT_NAMES + ("image",))
        if self.coarse_to_fine not in (None, True, False):
            raise SettingError(lambda n: f"{n('coarse_to_fine')} must be True, False or None (automatic), "
                               f"got {self.coarse_to_fine!r}")
        for name in self.content_layers + self.style_layers:
            _check_choice("layer", name, layer_names(), "see nst_helpers.layer_names()")
        if not (isinstance(self.weights, (str, os.PathLike)) and
                (self.weights in WEIGHT_NAMES or os.path.isfile(self.weights))):
            _check_choice("weights", self.weights, WEIGHT_NAMES, "or the path of an existing weight file")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise SettingError(lambda n: f"{n('precision')} must be 'auto', 'fp32' or 'bf16', got {self.precision!r}")
        _check_choice("memory_format", self.memory_format, MEMORY_FORMATS)
        if self.memory_format == "contiguous":           # PyTorch's name for NCHW
            self.memory_format = "nchw"
        if self.optimizer not in ("lbfgs", "adam"):
            raise SettingError(lambda n: f"{n('optimizer')} must be 'lbfgs' or 'adam', got {self.optimizer!r}")
        if not (0 <= self.stop_tolerance < 1):
            raise SettingError(lambda n: f"{n('stop_tolerance')} must be a fraction in [0, 1), "
                               f"got {self.stop_tolerance!r}")
        _check_whole("stop_window", self.stop_window, 1)
        if isinstance(self.coarse_share, bool) or not isinstance(self.coarse_share, (int, float)) \
                or not 0 < self.coarse_share < 1:
            raise SettingError(lambda n: f"{n('coarse_share')} must be a fraction between 0 and 1, "
                               f"got {self.coarse_share!r}")
        for name in ("content_weight", "style_weight", "tv_weight"):
            value = getattr(self, name)
            if not (value >= 0 and value < float("inf")):
                raise SettingError(lambda n, name=name: f"{n(name)} must be a finite number >= 0, got {value}")
        if not self.content_layers and not self.style_layers:
            raise ValueError("give at least one content layer or one style layer")
        if self.preserve_color not in (None,) + controls.COLOUR_METHODS:
            raise SettingError(lambda n: f"{n('preserve_color')} must be None, 'luminance' or 'histogram', "
                               f"got {self.preserve_color!r}")
        if isinstance(self.style_scale, bool) or not isinstance(self.style_scale, (int, float)) \
                or not (0 < self.style_scale < float("inf")):
            raise SettingError(lambda n: f"{n('style_scale')} must be a number > 0 (1.0: the style image at the "
                               f"result's size), got {self.style_scale!r}")
        if self.style_size is not None and self.style_scale != 1.0:
            raise SettingError(lambda n: f"give {n('style_size')} or {n('style_scale')}, not both "
                               f"({n('style_scale')} = {n('style_size')} / {n('size')})")
        if self.style_blend is not None:  # the number of styles is checked by stylize
            if not isinstance(self.style_blend, (list, tuple, np.ndarray, torch.Tensor)):
                raise SettingError(lambda n: f"{n('style_blend')} must be a list of weights, one per style, "
                                   f"got {self.style_blend!r}")
            controls.blend_matrix(self.style_blend, len(self.style_blend), self.style_layers)

    @property
    def style_long_side(self) -> int:
        """The long side of the style image(s) at full size, in pixels."""
        return self.style_size or max(16, round(self.style_scale * self.size))


def _check_whole(name: str, value, low: int, unit: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise SettingError(lambda n: f"{n(name)} must be a whole number, at least {low}{unit}, got {value!r}")


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
    raise SettingError(lambda n: f"unknown {n(name)} {value!r}: {hint}{advice}")


def split_init(init) -> tuple[str, object]:
    """(the ``init`` setting, the start image or None): a name stays a name, anything else is an image to load.

    Introduced in notebook 05.
    """
    if isinstance(init, str) and init in INIT_NAMES:
        return init, None
    return "image", init
