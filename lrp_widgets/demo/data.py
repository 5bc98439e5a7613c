"""Procedural shape images with ground-truth masks: the demo dataset.

Every image is 64×64 RGB: one shape (circle, square, triangle, cross or ring) in a random colour,
size, position and rotation over a textured noise background. The mask marks exactly the pixels
painted with the shape colour. Everything is drawn with numpy from a local
:class:`numpy.random.Generator`, so the same seed always gives the same images and global random
state is never read or changed.

Shapes are described in the shape's own coordinates ``(u, v)``: the pixel offset from the centre,
rotated by the shape's angle and divided by its radius, so every shape fits inside the unit disc
and therefore inside the image for any rotation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "ring")
IMAGE_SIZE = 64

# Radius of the circle enclosing a shape, in pixels.
MIN_RADIUS = 9.0
MAX_RADIUS = 20.0
# Per-channel distance between the shape colour and the mean background colour, in [0, 1] units.
MIN_CONTRAST = 0.3
# Amplitudes of the background texture (two octaves of smooth noise) and of the pixel noise.
COARSE_TEXTURE = 0.16
FINE_TEXTURE = 0.08
PIXEL_NOISE = 0.03


def _circle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u * u + v * v <= 0.85**2


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Half side 1/sqrt(2): the corners touch the unit circle.
    return np.maximum(np.abs(u), np.abs(v)) <= 2**-0.5


def _triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Equilateral: inside the three half-planes at distance 1/2 (the inradius) from the centre,
    # with outward normals 120 degrees apart, so the vertices lie on the unit circle.
    inside = np.ones(u.shape, dtype=bool)
    for k in range(3):
        theta = np.pi / 2 + 2 * np.pi * k / 3
        inside &= u * np.cos(theta) + v * np.sin(theta) <= 0.5
    return inside


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Two bars of half width 0.3 and half length 0.95; their corners stay inside the unit circle.
    au, av = np.abs(u), np.abs(v)
    return ((au <= 0.3) & (av <= 0.95)) | ((av <= 0.3) & (au <= 0.95))


def _ring(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    r2 = u * u + v * v
    return (r2 >= 0.5**2) & (r2 <= 0.95**2)


_SHAPE_MASKS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "cross": _cross,
    "ring": _ring,
}


def _smooth_noise(rng: np.random.Generator, n: int, grid: int) -> np.ndarray:
    """Noise in [-1, 1] of shape [n, 3, S, S], bilinearly upsampled from a ``grid``×``grid`` one."""
    coarse = 2.0 * rng.random(size=(n, 3, grid, grid), dtype=np.float32) - 1.0
    # Linear interpolation matrix from `grid` knots (spanning the image) to IMAGE_SIZE pixels.
    position = (np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5) / IMAGE_SIZE * (grid - 1)
    left = np.minimum(np.floor(position).astype(np.int64), grid - 2)
    weight = position - left
    interp = np.zeros((IMAGE_SIZE, grid), dtype=np.float32)
    interp[np.arange(IMAGE_SIZE), left] = 1.0 - weight
    interp[np.arange(IMAGE_SIZE), left + 1] = weight
    return interp @ coarse @ interp.T


def generate(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``n`` shape images, deterministically from ``seed``.

    Classes are balanced: each of the ``len(SHAPES)`` classes occurs ``n // len(SHAPES)`` or one
    more times, in random order.

    Parameters
    ----------
    n
        number of images (``>= 0``).
    seed
        non-negative integer seed of the local random generator.

    Returns
    -------
        ``(rgb, labels, masks)``: ``rgb`` float32 ``[n, 3, 64, 64]`` in ``[0, 1]``, ``labels``
        int64 ``[n]`` indexing :data:`SHAPES`, ``masks`` bool ``[n, 64, 64]`` (the shape's pixels).

    Raises
    ------
    TypeError
        if ``n`` or ``seed`` is not an integer.
    ValueError
        if ``n`` or ``seed`` is negative.
    """
    for name, value in (("n", n), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}: {value!r}")
        if value < 0:
            raise ValueError(f"{name} must be non-negative, got {value}")
    n = int(n)
    rng = np.random.default_rng(int(seed))
    size = IMAGE_SIZE

    labels = rng.permutation(np.arange(n) % len(SHAPES)).astype(np.int64)
    radius = rng.uniform(MIN_RADIUS, MAX_RADIUS, size=n).astype(np.float32)
    # Centre such that the enclosing circle (plus one pixel) lies inside the image.
    centre_x = rng.uniform(radius + 1.0, size - 1.0 - radius).astype(np.float32)
    centre_y = rng.uniform(radius + 1.0, size - 1.0 - radius).astype(np.float32)
    angle = rng.uniform(0.0, 2.0 * np.pi, size=n).astype(np.float32)

    # Shape coordinates of every pixel centre, [n, size, size].
    pixel = np.arange(size, dtype=np.float32) + 0.5
    dx = pixel[None, None, :] - centre_x[:, None, None]
    dy = pixel[None, :, None] - centre_y[:, None, None]
    cos = (np.cos(angle) / radius)[:, None, None]
    sin = (np.sin(angle) / radius)[:, None, None]
    u = cos * dx + sin * dy
    v = cos * dy - sin * dx

    masks = np.zeros((n, size, size), dtype=bool)
    for index, shape in enumerate(SHAPES):
        chosen = labels == index
        masks[chosen] = _SHAPE_MASKS[shape](u[chosen], v[chosen])

    # Background: a mean colour with two octaves of smooth colour noise.
    background = rng.uniform(0.0, 1.0, size=(n, 3)).astype(np.float32)
    # Shape colour: every channel is MIN_CONTRAST to 1 - MIN_CONTRAST away from the background's
    # (cyclically), so the shape stands out whatever the two colours are.
    offset = rng.uniform(MIN_CONTRAST, 1.0 - MIN_CONTRAST, size=(n, 3)).astype(np.float32)
    foreground = np.mod(background + offset, 1.0)

    rgb = COARSE_TEXTURE * _smooth_noise(rng, n, 4)
    rgb += FINE_TEXTURE * _smooth_noise(rng, n, 13)
    rgb += background[:, :, None, None]
    np.copyto(rgb, foreground[:, :, None, None], where=masks[:, None, :, :])
    rgb += PIXEL_NOISE * rng.standard_normal(size=rgb.shape, dtype=np.float32)
    np.clip(rgb, 0.0, 1.0, out=rgb)
    return rgb, labels, masks
