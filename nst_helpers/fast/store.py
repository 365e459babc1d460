"""Network files: plain tensors and a small JSON-able config, never pickled objects (notebook 07).

A file is a ``torch.save`` of ``{"format": FORMAT, "config": {...}, "state": {name: tensor}}`` and, in a
training checkpoint, a ``"training"`` entry (the current weights, the optimiser's state, the step, the
loss history and the random state).  ``state`` always holds the *best* network so far, so a checkpoint is
also a network file.  Files are read with ``torch.load(..., weights_only=True)``, which refuses anything
but tensors and plain containers, so a file cannot run code when it is opened.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch

from .network import NORMS, TransformNet

__all__ = ["FORMAT", "save_network", "read_file", "network_from_file"]

FORMAT = "nst_helpers.fast/1"


def save_network(net: TransformNet, path, training: dict | None = None, info: dict | None = None,
                 state: dict | None = None) -> Path:
    """Write ``net`` (or ``state``, a state dict of the same network) to ``path``, atomically (notebook 07).

    training: a checkpoint's training state (see ``train``); info: JSON-able notes kept in the config
    (e.g. the training settings).  Written to a temporary file first, so a stopped save leaves the
    previous file whole.
    """
    path = Path(path).expanduser()
    config = dict(net.config)
    if info:
        config["info"] = info
    json.dumps(config)  # the config must stay plain data
    state = {name: value.detach().cpu().clone() for name, value in (state or net.state_dict()).items()}
    payload = {"format": FORMAT, "config": config, "state": state}
    if training is not None:
        payload["training"] = training
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".part")
    torch.save(payload, temporary)
    os.replace(temporary, path)
    return path


def read_file(path) -> dict:
    """The checked contents of a network file; ValueError (one line) for a damaged or foreign file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no network file {path}")
    try:
        with warnings.catch_warnings():   # a foreign pickle's protocol warning: the one-line error says enough
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # the unpickler's errors vary: zip, EOF, pickle, runtime
        reason = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path.name} is not a network file of nst_helpers ({reason}); train one with "
                         "nst-train-fast or use a shipped style") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path.name} is not a network file of nst_helpers (no {FORMAT!r} format tag); train "
                         "one with nst-train-fast or use a shipped style")
    config, state = payload.get("config"), payload.get("state")
    if not isinstance(config, dict) or not isinstance(state, dict) or \
            not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path.name} is damaged: its config or weights are missing")
    return payload


def network_from_file(path) -> TransformNet:
    """The network stored in ``path``, in ``eval()`` mode; ValueError (one line) when the file is not right."""
    payload = read_file(path)
    config, name = payload["config"], Path(path).name
    try:
        width, blocks, n_styles = (int(config[k]) for k in ("width", "blocks", "n_styles"))
        norm, names = config.get("norm", "instance"), config.get("names")
        if norm not in NORMS or (names is not None and not all(isinstance(n, str) for n in names)):
            raise ValueError
        net = TransformNet(width, blocks, n_styles, norm, names)
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{name} is damaged: its config {config!r:.80} does not describe a network") from None
    try:
        net.load_state_dict(payload["state"], strict=True)
    except RuntimeError as err:
        raise ValueError(f"{name} is damaged: its weights do not fit the network it describes "
                         f"({str(err).splitlines()[-1].strip()[:100]})") from None
    if not all(torch.isfinite(p).all() for p in net.state_dict().values() if p.is_floating_point()):
        raise ValueError(f"{name} is damaged: some weights are not finite numbers")
    net.info = config.get("info", {})
    return net.eval()
