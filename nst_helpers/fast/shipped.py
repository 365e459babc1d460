"""The networks shipped with the package, and one-pass stylisation (notebook 07).

    stylize_fast("chelsea", "starry_night")                          # (1, 3, H, W), long side 512
    stylize_fast(photo, ["starry_night", "great_wave"], blend=[0.7, 0.3])
    stylize_fast(photo, network="my_style.pt")                       # a network you trained
    net = load_network("starry_night")                                # the network that holds that style
    styles_with_network()                                             # ['starry_night', 'great_wave', ...]
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
from pathlib import Path

import torch

from .network import TransformNet, style_vector
from .store import network_from_file

__all__ = ["SHIPPED", "styles_with_network", "load_network", "stylize_fast", "shipped_path"]

# File in nst_helpers/data/networks -> (SHA-256, the styles it offers, in order).  Trained by this project
# with tools/train_fast_networks.py from the shipped paintings (see README, credits).  A file that offers no
# style is loaded by its file name only: the two single-painting networks of notebook 07's figure on
# instance against batch norm.
SHIPPED: dict[str, tuple[str, tuple[str, ...]]] = {
    "paintings.pt": ("58d67c23659af8df9a3d1e207089a6fb0f32d9c6cd89fbe4444e6789233b7e68", ('starry_night', 'great_wave', 'composition_vii', 'water_lilies')),
    "starry_night_instance_norm.pt": ("2fc6ce8b0e5824e764479d8988e9c2773bf8c4081aeefa4614517a8024c75b9f", ()),
    "starry_night_batch_norm.pt": ("0babb7c3568a3062ccd8ec3e957350d8e5c0050f3e9eac508f0f2559ff7f75a9", ()),
}

_CACHE: dict[str, TransformNet] = {}


def styles_with_network() -> list[str]:
    """The style names that have a shipped network, for ``stylize_fast`` and ``nst-stylize --fast``."""
    return [style for _, styles in SHIPPED.values() for style in styles]


def shipped_path(file: str) -> Path:
    """Where the shipped network ``file`` lies in the installed package."""
    return Path(str(importlib.resources.files("nst_helpers") / "data" / "networks" / file))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _no_network(name: str) -> ValueError:
    have = ", ".join(styles_with_network()) or "none"
    return ValueError(f"no shipped network for the style {name!r}; styles with one: {have} "
                      "(or train your own with nst-train-fast and pass its file)")


def load_network(name_or_path) -> TransformNet:
    """A network in ``eval()`` mode (notebook 07): a shipped style's name, or the path of a network file.

    A shipped name gives the shipped network that holds that style (the four paintings share one
    conditional network: ``net.names`` lists its styles).  Shipped files are checked against their
    SHA-256; any file is read with ``weights_only=True`` and checked for shape and finite values, and a
    damaged or foreign file raises a one-line ValueError.  Shipped networks are loaded once and cached.
    """
    if isinstance(name_or_path, TransformNet):
        return name_or_path
    text = os.fspath(name_or_path)
    for file, (sha256, styles) in SHIPPED.items():
        if text in styles or text == file:
            if file not in _CACHE:
                path = shipped_path(file)
                if not path.is_file() or _sha256(path) != sha256:
                    raise ValueError(f"the shipped network {file} is missing or damaged (SHA-256 differs); "
                                     "reinstall nst_helpers")
                _CACHE[file] = network_from_file(path)
            return _CACHE[file]
    path = Path(text).expanduser()
    if not path.is_file():
        if path.suffix == "" and os.sep not in text and "/" not in text:
            raise _no_network(text)
        raise FileNotFoundError(f"no network file {text!r}: give a file written by nst-train-fast, or one of "
                                f"the styles with a shipped network: {', '.join(styles_with_network()) or 'none'}")
    return network_from_file(path)


def stylize_fast(photo, style=None, *, network=None, size: int | None = 512, blend=None,
                 device=None) -> torch.Tensor:
    """``photo`` repainted by a trained network in one forward pass (notebook 07); a (1, 3, H, W) tensor.

    photo:   anything ``load_image`` takes, an example name, or a (1, 3, H, W) tensor in [0, 1].
    style:   a style name (``styles_with_network()``, or one of a conditional network's ``names``), or a
             list of names to blend; None with a single-style ``network``.
    network: None (the shipped network that holds ``style``), a network file's path, or a TransformNet.
    size:    long side of the result in pixels (None: the photo's own size).  The strokes have the size
             in pixels that the network learnt, so a bigger picture has finer strokes relative to it.
    blend:   with a list of styles, one weight per style (None: equal); weights are divided by their sum.
    device:  where to run (default: the CPU, fast enough for one pass; "cuda" if you have one).
    """
    from ..inputs import load_any

    if network is None and style is None:
        raise ValueError(f"give a style (one of {', '.join(styles_with_network())}) or a network file")
    names = [style] if isinstance(style, str) else list(style) if style is not None else []
    if network is None:
        net = load_network(names[0])
        missing = [n for n in names if n not in (net.names or [])]
        if missing:
            raise _no_network(missing[0])
    else:
        net = load_network(network)
    if blend is not None and len(blend) != max(1, len(names)):
        raise ValueError(f"blend has {len(blend)} weight(s) for {max(1, len(names))} style(s): give one per style")
    weights = torch.zeros(net.n_styles)
    if not names:
        if net.n_styles > 1:
            raise ValueError(f"this network holds {net.n_styles} styles: name one of {', '.join(net.names or [])}")
        weights[0] = 1.0
    for k, name in enumerate(names):
        index = style_vector(net, name).argmax().item()
        weights[index] += 1.0 if blend is None else float(blend[k])
    image = load_any(photo, size=size) if not isinstance(photo, torch.Tensor) or size is not None else photo
    device = torch.device(device or "cpu")
    with torch.inference_mode():
        return net.to(device)(image.to(device), weights.tolist()).cpu()
