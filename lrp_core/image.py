"""Turn attribution arrays (numpy or torch) into PIL images: normalise, colour-map, tile, save.

Normalisation maps ``[vmin, vmax]`` linearly to ``[0, 1]`` and clips outside values. With
``symmetric=True`` the interval is made symmetric around zero (``[-a, a]`` with ``a`` the largest
absolute bound), so zero lands on the middle of the colour map; a given ``vmin`` / ``vmax``
replaces the computed bound after that. An interval of zero width maps everything to 0.5 when
symmetric and to 0 otherwise. Pixel values and palette indices are ``floor(255 * scaled)``.
With ``grid`` every sample is normalised on its own before the pixel images are tiled. These
details follow the reference library, so images match its pixel for pixel.

Layouts understood by :func:`imgify`:

- 2D ``(H, W)``: colour-mapped, returned as a palette ("P") image.
- 3D ``(3, H, W)`` / ``(1, H, W)`` (channel first) or ``(H, W, 3)`` / ``(H, W, 1)`` (channel
  last; preferred when both readings fit): three channels give an "RGB" image, one channel is
  treated as 2D.
- batches ``(N, H, W)``, ``(N, C, H, W)`` or ``(N, H, W, C)`` with ``grid=True`` or
  ``grid=(rows, cols)``: tiled by :func:`gridify` first.

Pillow is imported on first use; matplotlib is never imported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from .cmap import CMAPS, ColorMap, ColorMapSyntaxError

if TYPE_CHECKING:
    from os import PathLike

    from PIL.Image import Image

__all__ = [
    "CMAPS",
    "get_cmap",
    "gridify",
    "imgify",
    "imsave",
    "interval_norm_bounds",
    "palette",
]

_CHANNEL_SIZES = (1, 3)


def _to_numpy(obj: object, name: str = "obj") -> np.ndarray:
    """Return ``obj`` (torch tensor, numpy array or nested sequence) as a finite float64 array."""
    if hasattr(obj, "detach") and hasattr(obj, "cpu"):  # torch tensor, without importing torch
        obj = obj.detach().cpu().numpy()
    try:
        array = np.asarray(obj, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{name} must be a numpy array, a torch tensor or a nested sequence of numbers, "
            f"got {type(obj).__name__}."
        ) from error
    if not np.isfinite(array).all():
        raise ValueError(
            f"{name} contains NaN or infinity: replace them first, e.g. with numpy.nan_to_num."
        )
    return array


def _resolve_cmap(cmap: str | ColorMap) -> ColorMap:
    """Return a ColorMap from a built-in name, a source string or a ColorMap."""
    if isinstance(cmap, ColorMap):
        return cmap
    if not isinstance(cmap, str):
        raise TypeError(
            f"cmap must be a colour map name, a colour map source or a ColorMap, "
            f"got {type(cmap).__name__}."
        )
    if cmap in CMAPS:
        return CMAPS[cmap]
    try:
        return ColorMap(cmap)
    except ColorMapSyntaxError as error:
        raise ColorMapSyntaxError(
            f"cmap {cmap!r} is neither a built-in colour map ({', '.join(CMAPS)}) nor a valid "
            f"colour map source: {error}"
        ) from error


def get_cmap(cmap: str) -> ColorMap:
    """Return the built-in colour map named ``cmap``, or compile ``cmap`` as a colour map source.

    Raises
    ------
    TypeError
        If ``cmap`` is not a string.
    ColorMapSyntaxError
        (a ``RuntimeError``) if ``cmap`` is neither a built-in name nor a valid source.
    """
    if isinstance(cmap, str) and cmap in CMAPS:
        return CMAPS[cmap]
    return ColorMap(cmap)


def palette(cmap: str | ColorMap = "bwr", level: float = 1.0) -> np.ndarray:
    """Return the (256, 3) uint8 palette of ``cmap`` at contrast ``level``.

    Parameters
    ----------
    cmap:
        Name of a built-in map, a colour map source, or a :class:`~lrp_core.cmap.ColorMap`.
    level:
        Contrast around the map's middle, see :meth:`ColorMap.palette`.
    """
    return _resolve_cmap(cmap).palette(level=level)


def interval_norm_bounds(
    input: object,
    symmetric: bool = False,
    dim: int | Sequence[int] | None = None,
    *,
    vmin: float | np.ndarray | None = None,
    vmax: float | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Compute the normalisation interval ``[vmin, vmax]`` of ``input``.

    Parameters
    ----------
    input:
        Numpy array or torch tensor.
    symmetric:
        If true, the computed bounds become ``-a`` and ``a`` with ``a = max(|min|, |max|)``.
    dim:
        Axes to reduce over (kept with size 1 so the bounds broadcast against ``input``);
        ``None`` reduces over all axes but the first, giving one interval per sample.
    vmin, vmax:
        Fixed bounds (scalars or arrays broadcastable to the reduced shape) that replace the
        computed ones, after ``symmetric`` was applied (as ``imgify`` of the reference library
        does).

    Returns
    -------
    vmin, vmax:
        Float64 numpy arrays that broadcast against ``input``.

    Raises
    ------
    ValueError
        If the input is empty, or the resulting ``vmin`` exceeds ``vmax``.
    """
    array = _to_numpy(input, "input")
    if array.size == 0:
        raise ValueError("input is empty: there is nothing to normalise.")
    axes = tuple(range(1, array.ndim)) if dim is None else dim
    low = array.min(axis=axes, keepdims=True)
    high = array.max(axis=axes, keepdims=True)
    if symmetric:
        high = np.maximum(np.abs(low), np.abs(high))
        low = -high
    if vmin is not None:
        low = np.broadcast_to(_to_numpy(vmin, "vmin"), low.shape)
    if vmax is not None:
        high = np.broadcast_to(_to_numpy(vmax, "vmax"), high.shape)
    if np.any(low > high):
        raise ValueError(f"vmin ({vmin}) exceeds vmax ({vmax}): pass vmin <= vmax.")
    return low, high


def _normalise(array: np.ndarray, vmin, vmax, symmetric: bool, dim=None) -> np.ndarray:
    """Map ``array`` to [0, 1] by the interval normalisation described in the module docstring,
    with bounds over the axes ``dim`` (``None``: the whole array)."""
    axes = tuple(range(array.ndim)) if dim is None else dim
    low, high = interval_norm_bounds(array, symmetric, axes, vmin=vmin, vmax=vmax)
    width = high - low
    flat = np.where(width > 0, width, 1.0)
    scaled = np.where(width > 0, (array - low) / flat, 0.5 if symmetric else 0.0)
    return np.clip(scaled, 0.0, 1.0)


def _channel_last(array: np.ndarray, name: str, batched: bool) -> np.ndarray:
    """Move a channel axis of size 1 or 3 last; 2D images (per sample) get no channel axis."""
    lead = 1 if batched else 0
    if array.ndim == lead + 2:
        return array
    if array.ndim != lead + 3:
        raise ValueError(
            f"{name} has shape {array.shape}; expected "
            + (
                "(N, H, W), (N, C, H, W) or (N, H, W, C)"
                if batched
                else "(H, W), (C, H, W) or (H, W, C)"
            )
            + " with C = 1 or 3."
        )
    if array.shape[-1] in _CHANNEL_SIZES:
        return array
    if array.shape[lead] in _CHANNEL_SIZES:
        return np.moveaxis(array, lead, -1)
    raise ValueError(
        f"{name} has shape {array.shape} with no channel axis of size 1 or 3 (first or last "
        "after the batch axis): select channels or reduce them, e.g. sum over the channel axis."
    )


def gridify(
    obj: object,
    shape: tuple[int, int] | None = None,
    fill_value: float | None = None,
) -> np.ndarray:
    """Tile a batch of images into one image.

    Parameters
    ----------
    obj:
        Batch of shape ``(N, H, W)``, ``(N, C, H, W)`` or ``(N, H, W, C)`` with ``C`` 1 or 3
        (numpy array or torch tensor).
    shape:
        ``(rows, cols)`` of the grid, filled row by row; ``None`` picks
        ``cols = floor(sqrt(N))`` and ``rows = ceil(N / cols)`` (as the reference library).
    fill_value:
        Value of the empty cells; ``None`` uses each channel's minimum over ``obj``.

    Returns
    -------
    numpy.ndarray
        ``(rows * H, cols * W, C)``, with ``C = 1`` for 2D samples.

    Raises
    ------
    ValueError
        If the layout is not one of the above or the grid has fewer than N cells.
    """
    array = _channel_last(_to_numpy(obj), "obj", batched=True)
    if array.ndim == 3:  # (N, H, W): one channel, kept as an axis (as in the reference library)
        array = array[..., np.newaxis]
    count = array.shape[0]
    if count == 0:
        raise ValueError("obj is an empty batch: give at least one image to gridify.")
    if shape is None:
        cols = math.isqrt(count)
        rows = math.ceil(count / cols)
    else:
        if (
            len(shape) != 2
            or not all(isinstance(size, Integral) and size > 0 for size in shape)
            or shape[0] * shape[1] < count
        ):
            raise ValueError(
                f"shape={shape!r} is not a (rows, cols) pair of positive ints with at least "
                f"{count} cells: pass e.g. shape=({count}, 1) or shape=None."
            )
        rows, cols = int(shape[0]), int(shape[1])
    # default: each channel's minimum over the batch (as in the reference library)
    fill = array.min(axis=(0, 1, 2)) if fill_value is None else float(fill_value)
    cells = np.full((rows * cols,) + array.shape[1:], fill, dtype=np.float64)
    cells[:count] = array
    height, width = array.shape[1:3]
    tiled = cells.reshape((rows, cols, height, width) + array.shape[3:])
    tiled = np.swapaxes(tiled, 1, 2)  # rows, H, cols, W, [C]
    return tiled.reshape((rows * height, cols * width) + array.shape[3:])


def imgify(
    obj: object,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str | ColorMap = "bwr",
    level: float = 1.0,
    symmetric: bool = False,
    grid: bool | tuple[int, int] = False,
    gridfill: float | None = None,
) -> Image:
    """Turn an array into a PIL image.

    Parameters
    ----------
    obj:
        Numpy array or torch tensor in one of the layouts of the module docstring.
    vmin, vmax:
        Normalisation bounds; ``None`` takes the minimum / maximum of the array (of each
        sample with ``grid``), made symmetric around zero first with ``symmetric``.
    cmap:
        Colour map for 2D data: built-in name, source string or ColorMap.
    level:
        Palette contrast, see :meth:`ColorMap.palette`.
    symmetric:
        Normalise symmetrically around zero (zero maps to the palette's middle).
    grid:
        ``True`` or ``(rows, cols)`` to tile a batch with :func:`gridify` first.
    gridfill:
        Pixel value (0 to 255) of empty grid cells (``None``: each channel's minimum pixel
        value), as in the reference library.

    Returns
    -------
    PIL.Image.Image
        Mode "P" (with the colour map as palette) for 2D data, "RGB" for 3-channel data.

    Raises
    ------
    ValueError
        On an unsupported shape, a batch without ``grid``, NaN/inf values or bad bounds.
    """
    from PIL import Image

    array = _to_numpy(obj)
    pixels = None
    if grid is True or isinstance(grid, (tuple, list)):
        # each sample is normalised on its own and turned into pixel values, which are tiled
        shape = None if grid is True else tuple(grid)
        scaled = _normalise(array, vmin, vmax, symmetric, dim=tuple(range(1, array.ndim)))
        fill = None if gridfill is None else float(np.clip(np.floor(gridfill), 0, 255))
        array = pixels = gridify(np.floor(scaled * 255.0), shape=shape, fill_value=fill)
    elif grid not in (False, None):
        raise ValueError(f"grid must be True, False or a (rows, cols) pair, got {grid!r}.")
    elif array.ndim == 4 or (array.ndim == 3 and not _looks_like_single_image(array.shape)):
        raise ValueError(
            f"obj has shape {array.shape}, which looks like a batch: pass grid=True (or "
            "grid=(rows, cols)) to tile it, or select one sample."
        )
    array = _channel_last(array, "obj", batched=False)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]

    if pixels is None:
        # truncated to whole values, as in the reference library
        pixels = np.floor(_normalise(array, vmin, vmax, symmetric) * 255.0)
    else:
        pixels = array
    pixels = np.ascontiguousarray(pixels.astype(np.uint8))
    height, width = pixels.shape[:2]
    if pixels.ndim == 2:
        image = Image.frombytes("P", (width, height), pixels.tobytes())
        image.putpalette(palette(cmap, level=level).tobytes())
        return image
    return Image.frombytes("RGB", (width, height), pixels.tobytes())


def _looks_like_single_image(shape: tuple[int, ...]) -> bool:
    """True when a 3D shape has a channel axis of size 1 or 3 first or last."""
    return shape[0] in _CHANNEL_SIZES or shape[-1] in _CHANNEL_SIZES


def imsave(
    fp: str | PathLike[str] | IO[bytes],
    obj: object,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str | ColorMap = "bwr",
    level: float = 1.0,
    grid: bool | tuple[int, int] = False,
    format: str | None = None,
    writer_params: dict[str, Any] | None = None,
    symmetric: bool = False,
    gridfill: float | None = None,
) -> None:
    """Save ``obj`` as an image file; the keywords are those of :func:`imgify` (the positional
    order is the reference library's).

    Parameters
    ----------
    fp:
        File name, path or binary file object.
    format:
        Image format for Pillow (``None``: from the file name).
    writer_params:
        Extra keyword arguments for ``PIL.Image.Image.save`` (e.g. ``{"optimize": True}``).
    """
    image = imgify(
        obj,
        vmin=vmin,
        vmax=vmax,
        cmap=cmap,
        level=level,
        symmetric=symmetric,
        grid=grid,
        gridfill=gridfill,
    )
    image.save(fp, format=format, **(writer_params or {}))
