"""Patterns drawn by code (notebook 00): swirls, mosaic and waves, the course's synthetic style images.

They are patterns, not paintings: deterministic, small, quick to make, good for unit tests and wherever a texture
with a known structure teaches better (``examples.load("swirls")`` returns one as an image tensor).
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

__all__ = ["GENERATORS", "swirls", "mosaic", "waves"]

# Each returns a (512, 512, 3) uint8 array, the same for every call (fixed seed), in well under a second.

def _smooth_noise(rng, size: int, cells: int) -> np.ndarray:
    """A smooth random field (size, size), values roughly in [-2, 2], features about size/cells wide."""
    grid = rng.standard_normal((cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(grid, mode="F").resize((size, size), Image.Resampling.BICUBIC))


def _blocky_noise(rng, size: int, block: int) -> np.ndarray:
    """Uniform [0, 1) noise in square blocks of block x block pixels."""
    cells = rng.random((size // block, size // block)).astype(np.float32)
    return np.asarray(Image.fromarray(cells, mode="F").resize((size, size), Image.Resampling.NEAREST))


def _palette(t: np.ndarray, stops) -> np.ndarray:
    """Map t in [0, 1] to colours interpolated between RGB stops (0-255); returns (..., 3) in [0, 1]."""
    stops = np.asarray(stops, np.float32) / 255
    xs = np.linspace(0, 1, len(stops))
    return np.stack([np.interp(np.clip(t, 0, 1), xs, stops[:, c]) for c in range(3)], -1).astype(np.float32)


def _smear(image: np.ndarray, vx: np.ndarray, vy: np.ndarray, steps: int, step: float) -> np.ndarray:
    """Average image along the unit flow (vx, vy), steps*step pixels both ways (line integral convolution)."""
    size = vx.shape[0]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    total, count = image.astype(np.float32).copy(), 1
    for sign in (1.0, -1.0):
        x, y = xs.copy(), ys.copy()
        for _ in range(steps):
            xi = np.clip(np.rint(x), 0, size - 1).astype(np.intp)
            yi = np.clip(np.rint(y), 0, size - 1).astype(np.intp)
            x += sign * step * vx[yi, xi]
            y += sign * step * vy[yi, xi]
            xi = np.clip(np.rint(x), 0, size - 1).astype(np.intp)
            yi = np.clip(np.rint(y), 0, size - 1).astype(np.intp)
            total += image[yi, xi]
            count += 1
    return total / count


def _to_uint8(image: np.ndarray) -> np.ndarray:
    array = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    array.setflags(write=False)  # cached: nobody may change it in place
    return array


@functools.lru_cache(maxsize=None)
def swirls(size: int = 512, seed: int = 1) -> np.ndarray:
    """Van Gogh-like: coloured dabs smeared along swirling streamlines around a few vortices, glowing stars."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    psi = 0.6 * _smooth_noise(rng, size, 4) + 0.8 * ys  # stream function: drift plus vortices
    for cx, cy, radius, strength in [(0.3, 0.3, 0.12, 1.0), (0.72, 0.22, 0.09, -0.8), (0.58, 0.62, 0.16, 1.2),
                                     (0.18, 0.78, 0.1, -0.9), (0.86, 0.8, 0.08, 0.7)]:
        psi += strength * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * radius**2))
    grad_y, grad_x = np.gradient(psi)
    norm = np.hypot(grad_x, grad_y) + 1e-8
    vx, vy = grad_y / norm, -grad_x / norm  # along the contours of psi
    t = 0.5 + 0.35 * np.tanh(2.0 * (psi - psi.mean())) + 0.15 * _smooth_noise(rng, size, 24)
    t += 0.45 * (_blocky_noise(rng, size, 6) - 0.5)  # each dab its own shade
    sky = _palette(t, [(10, 20, 70), (25, 55, 140), (50, 100, 190), (95, 150, 215), (170, 200, 225), (235, 215, 120)])
    for cx, cy, radius in [(0.3, 0.3, 0.07), (0.72, 0.22, 0.05), (0.86, 0.8, 0.06), (0.12, 0.15, 0.04), (0.55, 0.1, 0.04)]:
        dist = np.hypot(xs - cx, ys - cy) / radius
        amount = np.clip(np.clip(1.2 - dist, 0, 1) ** 0.7 * (0.8 + 0.2 * np.cos(dist * 9.0)), 0, 1)[..., None]
        star = _palette(1 - dist * 0.6, [(60, 120, 190), (230, 200, 90), (250, 235, 150), (255, 250, 220)])
        sky = sky * (1 - amount) + star * amount
    paint = _smear(sky, vx, vy, steps=9, step=1.5)
    bristles = _smear(_blocky_noise(rng, size, 3), vx, vy, steps=8, step=1.5)
    bristles = (bristles - bristles.mean()) / (bristles.std() + 1e-8)
    return _to_uint8(paint * (1 + 0.16 * bristles[..., None]))


@functools.lru_cache(maxsize=None)
def mosaic(size: int = 512, seed: int = 2) -> np.ndarray:
    """Stained glass: Voronoi cells of bold colours with a glow and streaks, wobbly dark leading between them."""
    rng = np.random.default_rng(seed)
    n = 11  # cell centres on a jittered n x n grid
    grid_y, grid_x = np.mgrid[0:n, 0:n].astype(np.float32)
    centres = (np.stack([grid_x.ravel(), grid_y.ravel()], 1) + 0.15 + 0.7 * rng.random((n * n, 2))) / n * size
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    wx = xs + 6 * _smooth_noise(rng, size, 10)  # warped coordinates: hand-cut, wobbly edges
    wy = ys + 6 * _smooth_noise(rng, size, 10)
    # nearest (d1, label) and second-nearest (d2) centre, searching the 5x5 neighbouring grid cells
    cell_x = np.clip(wx * n / size, 0, n - 1).astype(np.intp)
    cell_y = np.clip(wy * n / size, 0, n - 1).astype(np.intp)
    d1 = np.full((size, size), np.inf, np.float32)
    d2, label = d1.copy(), np.zeros((size, size), np.intp)
    for oy in range(-2, 3):
        for ox in range(-2, 3):
            jx, jy = cell_x + ox, cell_y + oy
            inside = (jx >= 0) & (jx < n) & (jy >= 0) & (jy < n)
            k = np.where(inside, jy * n + jx, 0)
            d = np.where(inside, np.hypot(wx - centres[k, 0], wy - centres[k, 1]), np.inf)
            closer = d < d1
            d2 = np.where(closer, d1, np.minimum(d2, d))
            label = np.where(closer, k, label)
            d1 = np.minimum(d1, d)
    glass = np.array([(200, 30, 40), (230, 120, 20), (245, 200, 40), (30, 140, 70), (20, 70, 170),
                      (40, 160, 200), (120, 40, 150), (210, 60, 120), (250, 235, 190)], np.float32) / 255
    colours = glass[rng.integers(0, len(glass), n * n)] * (0.8 + 0.35 * rng.random((n * n, 1))).astype(np.float32)
    glow = np.clip(1.15 - 0.5 * d1 / (size / n), 0.6, 1.15)[..., None]
    streaks = 0.5 * _smooth_noise(rng, size, 60) + 0.5 * np.sin((0.7 * xs + 0.3 * ys) / 3 + 3 * _smooth_noise(rng, size, 16))
    image = colours[label] * glow * (1 + 0.12 * streaks[..., None])
    lead = np.clip((d2 - d1 - 3.0) / 2.5, 0, 1)[..., None]  # 0 on the leading lines
    return _to_uint8(image * lead + np.array([0.06, 0.05, 0.05], np.float32) * (1 - lead))


@functools.lru_cache(maxsize=None)
def waves(size: int = 512, seed: int = 3) -> np.ndarray:
    """Hokusai-like: rows of breaking crests, blue bands with contour lines, white foam fingers and spray."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    theta = 2 * np.pi * (2.5 * xs + 0.12 * _smooth_noise(rng, size, 5) + 0.35 * ys)
    crest = np.sin(theta + 0.9 * np.sin(theta))  # steep front, gentle back
    phi = 5.5 * ys + 0.55 * crest + 0.12 * _smooth_noise(rng, size, 6) + 0.4 * np.sin(2 * np.pi * 0.7 * xs)
    u = phi - np.floor(phi)  # 0 at a crest, towards 1 in the trough before the next one
    image = _palette(0.15 + 0.85 * u, [(235, 240, 235), (120, 170, 205), (40, 95, 160), (15, 40, 95), (8, 22, 60)])
    contour = np.cos(2 * np.pi * 9 * u + 2.0 * _smooth_noise(rng, size, 30)) > 0.64
    image = image * (1 - 0.28 * contour[..., None])
    foam_noise = _smooth_noise(rng, size, 90)
    fingers = 0.5 + 0.5 * np.sin(2 * np.pi * 60 * xs + 3 * foam_noise)
    foam = (u < 0.1 + 0.08 * fingers) | ((u < 0.3) & (foam_noise > 1.4 - 2.2 * u))
    spray = (rng.random((size, size)) > 0.985) & (u < 0.35)
    image = np.where((foam | spray)[..., None], np.array([0.97, 0.96, 0.9], np.float32), image)
    image = image * (1 - 0.85 * ((u > 0.985) | (u < 0.01)))[..., None]  # dark outline at each crest
    paper = 1 + 0.05 * _smooth_noise(rng, size, 128)
    return _to_uint8(image * paper[..., None])


GENERATORS = {"swirls": swirls, "mosaic": mosaic, "waves": waves}
