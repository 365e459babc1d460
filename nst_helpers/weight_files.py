"""Reading weight files safely, behind ``VGGFeatures`` (notebook 00): one-line errors, checked shapes and values.

``read_weights`` loads plain tensors only (``weights_only=True``); ``check_tensor`` checks one entry;
``decode_caffe`` turns the quantised Caffe VGG-19 file (indices and a codebook per convolution) into
convolution weights; ``sha256`` and ``file_size`` tell whether a file is the known one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def read_weights(path: Path) -> dict:
    """``torch.load`` of a weight file (plain tensors only), with a one-line error naming ``path``."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # empty, truncated or foreign files fail in many ways
        reason = " ".join(str(err).split()[:12]) or "the file is empty or cut short"
        raise ValueError(f"{path} is not a readable weight file ({type(err).__name__}: {reason}): "
                         "check the path (a VGGFeatures is saved with torch.save(extractor.state_dict(), path))") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path} holds a {type(raw).__name__}, not a dict of weights: save a VGGFeatures "
                         "with torch.save(extractor.state_dict(), path)")
    return raw


def check_tensor(value, shape, where: str, key: str, wrong_shape: str) -> None:
    """ValueError unless ``value`` is a tensor of ``shape`` without NaN or inf; ``wrong_shape`` ends that message."""
    if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(shape):
        found = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"{where}: {key!r} has shape {found}, expected {tuple(shape)}: {wrong_shape}")
    if value.is_floating_point() and not torch.isfinite(value).all():
        raise ValueError(f"{where}: {key!r} holds NaN or infinite values: the file is damaged")


def decode_caffe(raw: dict, path: Path, blocks) -> dict[str, torch.Tensor]:
    """The Caffe file's indices and codebooks as convolution weights, after checking shapes and values.

    blocks: (convolutions, output channels) of each block of VGG-19, in order.
    """
    state = {}
    in_channels = 3
    for block, (convs, channels) in enumerate(blocks, start=1):
        for i in range(1, convs + 1):
            src = f"block{block}_conv{i}"
            expected = {f"{src}_W_q": (channels, in_channels, 3, 3), f"{src}_W_table": (256,), f"{src}_b": (channels,)}
            for name, shape in expected.items():
                value = raw.get(name)
                if not isinstance(value, torch.Tensor):
                    raise ValueError(f"{path} has no tensor {name!r}: it is not the Caffe VGG-19 weight file")
                check_tensor(value, shape, str(path), name, "the file is damaged or not the Caffe VGG-19 weights")
            if raw[f"{src}_W_q"].dtype != torch.uint8:
                raise ValueError(f"{path}: {src}_W_q is {raw[f'{src}_W_q'].dtype}, expected torch.uint8 indices")
            state[f"conv{block}_{i}.weight"] = raw[f"{src}_W_table"].float()[raw[f"{src}_W_q"].long()]
            state[f"conv{block}_{i}.bias"] = raw[f"{src}_b"].float()
            in_channels = channels
    return state
