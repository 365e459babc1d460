"""Loading, converting, saving and showing images.

Every image at the API surface is a float32 tensor of shape (1, 3, H, W), RGB, values in [0, 1]:

    photo = load_image("photo.jpg", size=256)        # long side 256 px
    save_image(photo, "small.png")
    show_images([photo], titles=["my photo"])
"""

from __future__ import annotations

import io
import math
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .download import download_bytes
from .download import DOWNLOAD_DEADLINE_S, DOWNLOAD_TIMEOUT_S, MAX_DOWNLOAD_BYTES  # noqa: F401 - importable from here too

__all__ = ["load_image", "to_pil", "save_image", "show_images"]

FLOAT_255_ABOVE = 1.5  # a float array whose largest value is above this is read as 0-255
_SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


# ----------------------------------------------------------------------------- loading

def load_image(source, size: int | None = None, max_pixels: int | None = None) -> torch.Tensor:
    """Load an image as a (1, 3, H, W) float32 RGB tensor in [0, 1].

    source: a file path, an http(s) URL, bytes, a PIL image, a numpy array (HxW, HxWx3, HxWx4;
    uint8 0-255, or float 0-1, read as 0-255 when its largest value is above 1.5) or a (1,3,H,W)/(3,H,W)
    tensor (uint8 0-255 or float 0-1).  EXIF orientation is applied, transparency is composited on white.
    size: the long side in pixels (aspect ratio kept).  max_pixels: an upper bound on H*W (the image is shrunk to fit).
    """
    size = _check_positive_int(size, "size")
    max_pixels = _check_positive_int(max_pixels, "max_pixels")
    if isinstance(source, torch.Tensor):
        return _resize_tensor(_tensor_input(source), size, max_pixels)
    if isinstance(source, np.ndarray):
        return _resize_tensor(_array_to_tensor(source), size, max_pixels)
    image = _pil_rgb(_open(source))
    width, height = _target_size(image.width, image.height, size, max_pixels)
    if (width, height) != image.size:
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    return _pil_to_tensor(image)


def _check_positive_int(value, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive whole number of pixels or None, got {value!r}")
    return int(value)


def _open(source) -> Image.Image:
    """Open any non-array source as a decoded PIL image with EXIF orientation applied."""
    if isinstance(source, Image.Image):
        image, name = source, "the PIL image"
    elif isinstance(source, (bytes, bytearray, memoryview)):
        image, name = _decode(io.BytesIO(bytes(source)), "the given bytes"), "the given bytes"
    elif isinstance(source, str) and "://" in source:
        scheme = source.split("://", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"unsupported URL scheme {scheme!r} in {source!r}: use an http(s) URL or a local file path")
        image, name = _decode(io.BytesIO(download_bytes(source)), source), source
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.is_file():
            what = "is a folder, not a file" if path.is_dir() else "does not exist"
            raise FileNotFoundError(f"image file {str(path)!r} {what}: check the path (relative to {os.getcwd()!r})")
        image, name = _decode(io.BytesIO(path.read_bytes()), str(path)), str(path)
    else:
        raise TypeError(
            f"cannot load an image from a {type(source).__name__}: "
            "pass a path, an http(s) URL, bytes, a PIL image, a numpy array or a tensor"
        )
    if image.width == 0 or image.height == 0:
        raise ValueError(f"{name} has zero size ({image.width}x{image.height}): use a non-empty image")
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block should not stop us from using the pixels
        return image


def _decode(file, name: str) -> Image.Image:
    """Image.open + load, turning PIL's errors (and its decompression-bomb warning) into one-line errors."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(file)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError(
            f"{name} has more than {Image.MAX_IMAGE_PIXELS:,} pixels (a possible decompression bomb): "
            "downscale it with an image editor first"
        ) from None
    except UnidentifiedImageError:
        raise ValueError(f"{name} is not an image file PIL can read: use a PNG, JPEG, WebP, GIF, BMP or TIFF") from None
    except OSError as err:
        if "truncated" in str(err).lower() or "broken data stream" in str(err).lower():
            raise ValueError(f"{name} is truncated (incomplete file): download or copy it again") from None
        raise ValueError(f"{name} could not be decoded ({err}): re-save it as PNG or JPEG") from None
    return image


def _pil_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode as RGB; transparent pixels become white."""
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16"):
            scale = 65535.0
        elif image.mode == "I":
            scale = 65535.0 if values.max(initial=0) > 255 else 255.0
        else:
            scale = 1.0 if values.max(initial=0) <= 1.0 else 255.0
        gray = np.clip(np.rint(values / scale * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    return image.convert("RGB")


def _pil_to_tensor(image: Image.Image) -> torch.Tensor:
    array = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def _array_to_tensor(array: np.ndarray) -> torch.Tensor:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"cannot read an array of shape {array.shape} as an image: use HxW, HxWx3 or HxWx4")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"the array has zero size {array.shape}: use a non-empty image")
    if array.dtype == np.uint8:
        values = array.astype(np.float32) / 255.0
    elif np.issubdtype(array.dtype, np.floating):
        values = array.astype(np.float32)
        if not np.isfinite(values).all():
            raise ValueError("the array contains NaN or infinite values: pass finite values in [0, 1]")
        low, high = float(values.min()), float(values.max())
        if low < -0.5 or high > 255.5:
            raise ValueError(f"the array's values run from {low:.4g} to {high:.4g}: pass floats in [0, 1] or 0-255")
        if high > FLOAT_255_ABOVE:  # np.asarray(picture).astype(float): 0-255, not 0-1
            values = values / 255.0
        values = np.clip(values, 0.0, 1.0)  # only the slight overshoot of a resampling is cut
    else:
        raise ValueError(f"unsupported array dtype {array.dtype}: use uint8 (0-255) or float (0-1 or 0-255)")
    if values.ndim == 2:
        values = np.repeat(values[:, :, None], 3, axis=2)
    if values.shape[2] == 4:  # composite on white
        alpha = values[:, :, 3:]
        values = values[:, :, :3] * alpha + (1.0 - alpha)
    return torch.from_numpy(np.ascontiguousarray(values)).permute(2, 0, 1).unsqueeze(0).contiguous()


def _tensor_input(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.dim() == 3:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() != 4 or tensor.shape[:2] != (1, 3):
        raise ValueError(f"expected an image tensor of shape (1,3,H,W) or (3,H,W), got {tuple(tensor.shape)}")
    if tensor.shape[2] == 0 or tensor.shape[3] == 0:
        raise ValueError(f"the tensor has zero size {tuple(tensor.shape)}: use a non-empty image")
    if tensor.dtype == torch.uint8:  # 0-255, like a uint8 array
        return tensor.detach().float() / 255.0
    if not tensor.is_floating_point():
        raise ValueError(f"unsupported tensor dtype {tensor.dtype}: use uint8 (0-255) or float (0-1)")
    if not torch.isfinite(tensor).all():
        raise ValueError("the tensor contains NaN or infinite values: pass finite values in [0, 1]")
    return tensor.detach().float().clamp(0, 1)


def _resize_tensor(tensor: torch.Tensor, size: int | None, max_pixels: int | None) -> torch.Tensor:
    height, width = tensor.shape[2:]
    new_w, new_h = _target_size(width, height, size, max_pixels)
    if (new_w, new_h) != (width, height):
        tensor = F.interpolate(tensor, size=(new_h, new_w), mode="bicubic", antialias=True, align_corners=False)
    return tensor.clamp(0, 1).contiguous()


def _target_size(width: int, height: int, size: int | None, max_pixels: int | None) -> tuple[int, int]:
    """(width, height) with the long side = size (if given) and width*height <= max_pixels (if given)."""
    if size is not None:
        scale = size / max(width, height)
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    if max_pixels is not None and width * height > max_pixels:
        scale = math.sqrt(max_pixels / (width * height))
        new_w, new_h = max(1, math.floor(width * scale)), max(1, math.floor(height * scale))
        while new_w * new_h > max_pixels and max(new_w, new_h) > 1:  # rounding guard
            new_w, new_h = max(1, new_w - (new_w >= new_h)), max(1, new_h - (new_h > new_w))
        width, height = new_w, new_h
    return width, height


# ----------------------------------------------------------------------------- converting and saving

def to_pil(tensor: torch.Tensor) -> Image.Image:
    """A (1,3,H,W) or (3,H,W) tensor (values clamped to [0, 1]) as an 8-bit RGB PIL image."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"to_pil expects a torch tensor, got {type(tensor).__name__}: load images with load_image first")
    if tensor.dim() == 4 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.dim() != 3 or tensor.shape[0] != 3:
        raise ValueError(f"expected one image of shape (1,3,H,W) or (3,H,W), got {tuple(tensor.shape)}")
    array = tensor.detach().float().cpu().clamp(0, 1).mul(255).round().to(torch.uint8)
    return Image.fromarray(array.permute(1, 2, 0).numpy())


def save_image(tensor: torch.Tensor, path) -> Path:
    """Write a (1,3,H,W)/(3,H,W) tensor to a .png/.jpg/.jpeg file atomically; returns the Path."""
    path = Path(path).expanduser()
    image_format = _SAVE_FORMATS.get(path.suffix.lower())
    if image_format is None:
        raise ValueError(f"cannot save {str(path)!r}: the file name must end in .png, .jpg or .jpeg")
    image = to_pil(tensor)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise OSError(f"cannot write {str(path)!r}: {err.strerror or err}") from None
    try:
        with os.fdopen(handle, "wb") as file:
            options = {"quality": 95} if image_format == "JPEG" else {}
            image.save(file, format=image_format, **options)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp_name, 0o666 & ~umask)   # mkstemp makes 0600 files; give the usual permissions
        os.replace(temp_name, path)
    except BaseException as err:
        Path(temp_name).unlink(missing_ok=True)
        if isinstance(err, OSError):  # name the user's path, not the temporary file
            raise OSError(f"cannot write {str(path)!r}: {err.strerror or err}") from None
        raise
    return path


# ----------------------------------------------------------------------------- showing

def show_images(images, titles=None, ncols: int | None = None, size: float = 4.0, show: bool = True):
    """Show tensors ((1,3,H,W), (3,H,W) or a batch (N,3,H,W)) side by side in a grid.

    ncols: images per row (default: all in one row, at most 4).  size: inches per image.
    show: call plt.show() and return None; with show=False the Figure is returned instead, to add to it.
    """
    import matplotlib.pyplot as plt

    if isinstance(images, torch.Tensor):
        images = [images]
    tiles = []
    for image in images:
        if isinstance(image, torch.Tensor) and image.dim() == 4 and image.shape[0] > 1:
            tiles.extend(image.unbind(0))
        else:
            tiles.append(image)
    if not tiles:
        raise ValueError("show_images got no images: pass a tensor or a list of tensors")
    titles = list(titles) if titles is not None else [None] * len(tiles)
    if len(titles) != len(tiles):
        raise ValueError(f"got {len(tiles)} images but {len(titles)} titles: pass one title per image")
    ncols = _check_positive_int(ncols, "ncols") or min(len(tiles), 4)
    nrows = math.ceil(len(tiles) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, tile, title in zip(axes.flat, tiles, titles):
        ax.imshow(to_pil(tile))
        if title:
            ax.set_title(title)
    fig.tight_layout()
    if show:
        plt.show()
        return None
    return fig
