"""Training a transformation network on the course's perceptual loss (notebook 07).

    result = train(["starry_night"], steps=2000, checkpoint="my_style.pt")   # resumable
    result.net, result.history                                                # the best network, losses

The loss is the course's own (notebooks 02-04): VGG-19 with the Caffe weights, frozen; the normalised
content loss against the photo's own activations, the normalised style loss against Gram targets that
are computed *once* per painting, and the normalised total variation.  Only the network's weights are
optimised (Adam), never pixels: after training, one forward pass paints any photo.

With several paintings the network has conditional instance norms (Dumoulin et al. 2017); the images of
a batch take the styles in turn, so every step trains every style when the batch holds one image each.

Stroke size: a network paints strokes of the size, in pixels, that the paintings had when their Gram
targets were computed (``style_size``, their long side), whatever the size of the training crops.  So
``style_size`` should be near the size of the pictures you will make (384-512 px), and ``scale`` (how far the
photos are shrunk before cropping) should match too, so that objects have the size they will have then.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import display
from ..losses import gram_matrix, normalized_content_loss, normalized_style_weights, normalized_tv_loss, style_loss
from ..vgg import VGGFeatures
from .data import TRAIN_PHOTOS, CropSampler, load_photos
from .network import TransformNet
from .store import read_file, save_network

__all__ = ["TrainSettings", "TrainResult", "train", "style_targets"]

# Johnson et al.'s choice of a shallow content layer: with the course's relu4_2 a network keeps the photo's
# outlines but paints over its surfaces.  relu5_1 is left out: a 128 px crop gives it only 8 x 8 positions.
CONTENT_LAYERS = ("relu2_2",)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


@dataclass
class TrainSettings:
    """Everything that decides a training run (saved in the checkpoint; ``train`` takes them as keywords)."""

    steps: int = 2000                 # optimiser steps in all (a resumed run goes on to this number)
    batch: int = 4                    # crops per step
    crop: int = 128                   # side of the square training crops, a multiple of 16
    scale: tuple = (256, 512)         # long side, in pixels, to which photos are rescaled before cropping
    style_size: int = 384             # long side of the paintings for the Gram targets: sets the stroke size
    width: int = 16                   # filters of the network's first layer (Johnson et al.: 32)
    blocks: int = 5                   # residual blocks (Johnson et al.: 5)
    norm: str = "instance"            # or "batch", to see why instance norm matters
    content_weight: float = 1.0
    style_weight: float = 12.0        # 5 kept the photo better but painted little more than the colours
    tv_weight: float = 3.0
    learning_rate: float = 2e-3
    seed: int = 0
    photos: tuple = TRAIN_PHOTOS      # names of the install's photos to train on (see fast.data)
    best_window: int = 50             # the best network: lowest mean loss over this many steps
    content_layers: tuple = CONTENT_LAYERS   # the loss layers (notebooks 02-04 use relu4_2 for content)
    style_layers: tuple = STYLE_LAYERS

    def __post_init__(self):
        self.scale, self.photos = tuple(self.scale), tuple(self.photos)
        self.content_layers, self.style_layers = tuple(self.content_layers), tuple(self.style_layers)
        if not self.style_layers:
            raise ValueError("style_layers must name at least one VGG-19 layer")
        for name in ("steps", "batch", "crop", "style_size", "width", "best_window"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        if self.crop % 16:
            raise ValueError(f"crop must be a multiple of 16 pixels (VGG-19 pools four times), got {self.crop}")
        for name in ("content_weight", "style_weight", "tv_weight", "learning_rate"):
            value = getattr(self, name)
            if not (0 <= value < math.inf):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


@dataclass
class TrainResult:
    """What ``train`` returns: the best network (eval mode), the loss history and how the run ended."""

    net: TransformNet
    history: list = field(default_factory=list)   # one dict per step: step, total, content, style, tv, seconds
    best_loss: float = math.inf
    interrupted: bool = False
    seconds: float = 0.0


def _padded(image: torch.Tensor) -> torch.Tensor:
    """``image`` extended by reflection to a multiple of 16 pixels, for VGG-19's four poolings."""
    pad_h, pad_w = -image.shape[-2] % 16, -image.shape[-1] % 16
    return F.pad(image, (0, pad_w, 0, pad_h), mode="reflect") if pad_h or pad_w else image


def style_targets(extractor: VGGFeatures, paintings: Sequence[torch.Tensor],
                  layers: Sequence[str] = STYLE_LAYERS) -> list[list[torch.Tensor]]:
    """Per painting, its Gram matrices (1, C, C) at ``layers``: computed once, before training (notebook 07)."""
    targets = []
    with torch.no_grad():
        for painting in paintings:
            feats = extractor(_padded(painting))
            targets.append([gram_matrix(feats[name]) for name in layers])
    return targets


def _load_paintings(styles, size: int) -> tuple[list[torch.Tensor], list[str]]:
    from ..examples import names as example_names, load as load_example
    from ..images import load_image

    images, labels = [], []
    for style in styles:
        if isinstance(style, torch.Tensor):
            images.append(load_image(style, size=size))
            labels.append(f"style{len(labels)}")
        elif isinstance(style, str) and style in example_names():
            images.append(load_example(style, size=size))
            labels.append(style)
        else:
            images.append(load_image(style, size=size))
            labels.append(Path(str(style)).stem)
    return images, labels


def train(styles, *, checkpoint=None, resume: bool = True, checkpoint_every: int = 25,
          callback: Callable[[int, TransformNet, list], None] | None = None, callback_every: int = 100,
          progress: bool = True, names: Sequence[str] | None = None, weights: str = "caffe",
          extractor: VGGFeatures | None = None, **settings) -> TrainResult:
    """Train a transformation network for ``styles`` (notebook 07).

    styles: one painting or a list (example names, paths, images); several give a conditional network.
    checkpoint: a file written every ``checkpoint_every`` steps and at the end (it is also a network file:
    ``load_network(checkpoint)`` gives the best network); with ``resume`` an existing checkpoint is
    continued (its settings win over ``settings``), so a long training can span several sittings.
    callback(step, net, history) every ``callback_every`` steps (e.g. a preview on a held-out photo;
    ``net`` is in eval mode during the call).  settings: fields of ``TrainSettings``.  names: the styles'
    names stored in the network (default: the example names or the files' stems).  weights: the VGG's
    (``"random"`` only for tests of the plumbing); extractor: a ready ``VGGFeatures`` with the layers
    ``content_layers + style_layers`` instead (it is frozen here).
    Ctrl-C stops the run and returns the best network so far (``interrupted=True``), saved first.
    """
    styles = [styles] if isinstance(styles, (str, Path, torch.Tensor)) else list(styles)
    if not styles:
        raise ValueError("train needs at least one painting")
    checkpoint = Path(checkpoint).expanduser() if checkpoint is not None else None
    saved = read_file(checkpoint) if checkpoint is not None and resume and checkpoint.is_file() else None
    if saved is not None and "training" not in saved:
        raise ValueError(f"{checkpoint.name} holds a finished network without its training state; "
                         "use another file name, or start again (resume=False; --restart)")
    if saved is not None:  # the checkpoint's settings, except that the run may be made longer
        opts = TrainSettings(**{**saved["training"]["settings"], "steps": settings.get(
            "steps", saved["training"]["settings"]["steps"])})
    else:
        opts = TrainSettings(**settings)
    torch.manual_seed(opts.seed)
    paintings, labels = _load_paintings(styles, opts.style_size)
    labels = list(names) if names is not None else labels
    net = TransformNet(opts.width, opts.blocks, len(paintings), opts.norm, labels)
    content_layers, style_layers = opts.content_layers, opts.style_layers
    extractor = extractor or VGGFeatures(content_layers + style_layers, weights=weights)
    for p in extractor.parameters():
        p.requires_grad_(False)
    targets = style_targets(extractor, paintings, style_layers)
    per_style_weights = [normalized_style_weights(opts.style_weight / opts.batch, t) for t in targets]
    sampler = CropSampler(load_photos(opts.photos), opts.crop, opts.scale, opts.seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=opts.learning_rate)
    history: list[dict] = []
    best = {"loss": math.inf, "state": None}
    if saved is not None:
        state = saved["training"]
        net.load_state_dict(state["net"])
        optimizer.load_state_dict(state["optimizer"])
        sampler.set_state(state["sampler"])
        history = [dict(h) for h in state["history"]]
        best = {"loss": float(state["best_loss"]), "state": saved["state"]}

    def save() -> None:
        if checkpoint is None:
            return
        training = {"net": net.state_dict(), "optimizer": optimizer.state_dict(), "sampler": sampler.state(),
                    "history": history, "best_loss": best["loss"], "settings": _plain(asdict(opts))}
        save_network(net, checkpoint, training=training, state=best["state"] or net.state_dict(),
                     info={"settings": _plain(asdict(opts)), "step": len(history)})

    def run_callback() -> None:
        if callback is not None:
            net.eval()
            with torch.no_grad():
                callback(len(history), net, history)
            net.train()

    start, interrupted = time.perf_counter(), False
    bar = display.progress_bar(opts.steps, desc="train") if progress else None
    if bar is not None:
        bar.update(len(history))
    style_of = torch.arange(opts.batch) % len(paintings)
    one_hot = F.one_hot(style_of, len(paintings)).float()
    net.train()
    try:
        while len(history) < opts.steps:
            tick = time.perf_counter()
            photos = sampler.batch(opts.batch)
            with torch.no_grad():
                content_targets = extractor(photos)
            out = net(photos, one_hot)
            feats = extractor(out)
            content = sum(normalized_content_loss(opts.content_weight / len(content_layers), feats[n],
                                                  content_targets[n]) for n in content_layers)
            style = 0.0
            for k in range(len(paintings)):
                rows = style_of == k
                if rows.any():
                    style = style + style_loss({n: feats[n][rows] for n in style_layers}, style_layers,
                                               targets[k], per_style_weights[k])
            tv = normalized_tv_loss(out, opts.tv_weight)
            total = content + style + tv
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            history.append({"step": len(history) + 1, "total": total.item(), "content": _number(content),
                            "style": _number(style), "tv": tv.item(), "seconds": time.perf_counter() - tick})
            window = [h["total"] for h in history[-opts.best_window:]]
            if len(window) >= min(opts.best_window, opts.steps) and sum(window) / len(window) < best["loss"]:
                best = {"loss": sum(window) / len(window),
                        "state": {k: v.detach().clone() for k, v in net.state_dict().items()}}
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{history[-1]['total']:.3g}")
            if len(history) % checkpoint_every == 0:
                save()
            if len(history) % callback_every == 0:
                run_callback()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar is not None:
            bar.close()
    if best["state"] is None:  # too few steps for a window: the last weights are the best we have
        best = {"loss": history[-1]["total"] if history else math.inf, "state": net.state_dict()}
    save()
    net.load_state_dict(best["state"])
    return TrainResult(net.eval(), history, best["loss"], interrupted, time.perf_counter() - start)


def _number(value) -> float:
    return value.item() if isinstance(value, torch.Tensor) else float(value)


def _plain(value):
    """Tuples to lists, so that the settings are JSON-able and load with weights_only."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value

