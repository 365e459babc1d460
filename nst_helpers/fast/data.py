"""Training photos for the fast networks: what an install ships, cut into random crops (notebook 07).

No data set can be downloaded offline, so the networks learn from the real photographs that come with
scikit-image and matplotlib.  ``TRAIN_PHOTOS`` are used for training; ``HELD_OUT`` (the cat and the coffee
cup, the course's examples) are never shown to a network during training and serve to judge it.

    sampler = CropSampler(load_photos(), crop=128, seed=0)
    batch = sampler.batch(4)          # (4, 3, 128, 128), deterministic under the seed
"""

from __future__ import annotations

import importlib.resources

import torch
import torch.nn.functional as F

from ..images import load_image

__all__ = ["TRAIN_PHOTOS", "HELD_OUT", "photo_path", "load_photos", "CropSampler"]

# Real photographs of the install (colour and grey); grey ones are read as RGB.  Not used: drawings, text,
# charts, scikit-image's test patterns and near-duplicates (motorcycle_right is motorcycle_left's twin).
# Their sources and licences are in the docstrings of skimage.data's functions (e.g. skimage.data.rocket).
TRAIN_PHOTOS = ("astronaut", "rocket", "motorcycle_left", "hubble_deep_field", "ihc", "retina",
                "grace_hopper", "camera", "coins", "brick", "gravel")
HELD_OUT = ("chelsea", "coffee")
_SUFFIX = {"hubble_deep_field": ".jpg", "retina": ".jpg", "rocket": ".jpg"}
MAX_SIDE = 640  # photos are kept at this long side at most; crops are cut from rescaled copies


def photo_path(name: str):
    """Where the install keeps the photo ``name`` (scikit-image's data folder, or matplotlib's for grace_hopper)."""
    if name == "grace_hopper":
        from matplotlib import cbook

        return cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    # The bundled file itself: skimage.data's fetchers may try to download.
    return importlib.resources.files("skimage") / "data" / f"{name}{_SUFFIX.get(name, '.png')}"


def load_photos(names=TRAIN_PHOTOS, max_side: int = MAX_SIDE) -> list[torch.Tensor]:
    """The photos ``names`` as (1, 3, H, W) tensors in [0, 1], long side at most ``max_side`` pixels."""
    photos = []
    for name in names:
        image = load_image(photo_path(name))
        if max(image.shape[-2:]) > max_side:
            image = load_image(image, size=max_side)
        photos.append(image)
    return photos


class CropSampler:
    """Random training crops: a random photo, rescaled to a random long side, cropped, maybe mirrored.

    photos: (1, 3, H, W) tensors.  crop: the side of the square crops.  scale: (low, high) range of the
    long side, in pixels, to which a photo is rescaled before cropping: it sets how large the photo's
    objects are in a crop, and should match the sizes at which the network will be used (a 512 px
    picture: about 384-640).  The sampler's random state (``state()`` / ``set_state``) is saved in
    checkpoints, so that a resumed training sees the same crops as one that never stopped.
    """

    def __init__(self, photos: list[torch.Tensor], crop: int = 128, scale: tuple[int, int] = (384, 640),
                 seed: int = 0):
        if not photos:
            raise ValueError("CropSampler needs at least one photo")
        low, high = scale
        if not crop <= low <= high:
            raise ValueError(f"scale must be (low, high) with crop <= low <= high, got {scale} for crop {crop}")
        self.photos, self.crop, self.scale = photos, crop, (int(low), int(high))
        self.generator = torch.Generator().manual_seed(seed)

    def state(self) -> torch.Tensor:
        return self.generator.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)

    def _randint(self, low: int, high: int) -> int:
        """A whole number in [low, high], inclusive."""
        return int(torch.randint(low, high + 1, (1,), generator=self.generator))

    def sample(self) -> torch.Tensor:
        """One crop, (1, 3, crop, crop)."""
        photo = self.photos[self._randint(0, len(self.photos) - 1)]
        height, width = photo.shape[-2:]
        long_side = self._randint(*self.scale)
        factor = long_side / max(height, width)
        # The short side must still hold a crop.
        factor = max(factor, self.crop / min(height, width))
        size = (max(self.crop, round(height * factor)), max(self.crop, round(width * factor)))
        scaled = F.interpolate(photo, size=size, mode="bilinear", antialias=factor < 1, align_corners=False)
        top = self._randint(0, size[0] - self.crop)
        left = self._randint(0, size[1] - self.crop)
        piece = scaled[..., top:top + self.crop, left:left + self.crop]
        if self._randint(0, 1):
            piece = piece.flip(-1)
        return piece.clamp(0, 1)

    def batch(self, n: int) -> torch.Tensor:
        """n crops, (n, 3, crop, crop)."""
        return torch.cat([self.sample() for _ in range(n)])
