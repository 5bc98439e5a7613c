"""Parity of lrp_core.image and lrp_core.cmap with the reference library Zennit (black-box oracle).

Where the issue is silent (the colour values of the built-in maps, the meaning of ``level``,
gridding and normalisation details), matching Zennit is the requirement: palettes, pixel arrays
(``np.asarray`` of the returned PIL images), grids and bounds must be identical.
"""

from __future__ import annotations

import numpy as np
import pytest

import lrp_core.cmap
import lrp_core.image

from .zennit_oracle import load

zennit = load()
BUILTIN_MAPS = [
    "gray",
    "wred",
    "wblue",
    "hot",
    "cold",
    "coldnhot",
    "bwr",
    "france",
    "seismic",
    "coolio",
    "coleus",
]


def pixels(image) -> np.ndarray:
    """np.asarray of a PIL image; for palette ("P") images the palette is appended as a row.

    Zennit hands Pillow its palette as a numpy array, which current Pillow cannot load (the
    issue demands images that save and display); here the oracle's palette is converted to
    bytes first, so its index data and palette can be read and compared.
    """
    if image.mode != "P":
        return np.asarray(image)
    if isinstance(image.palette.palette, np.ndarray):
        image.palette.palette = np.asarray(image.palette.palette, dtype=np.uint8).tobytes()
    colours = np.asarray(image.getpalette(), dtype=np.uint8)[: 256 * 3]
    return np.concatenate([np.asarray(image).ravel(), colours])


def random(shape, seed=0, positive=False) -> np.ndarray:
    array = np.random.default_rng(seed).normal(size=shape)
    return np.abs(array) if positive else array


@pytest.mark.parametrize("level", [1.0, 0.5, 2.0])
@pytest.mark.parametrize("name", BUILTIN_MAPS)
def test_builtin_palettes_match_zennit(name, level):
    """Every built-in map's 256×3 uint8 palette, at several contrast levels."""
    ours = lrp_core.image.palette(name, level=level)
    theirs = zennit.image.palette(name, level=level)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(lrp_core.cmap.CMAPS[name].palette(level), theirs)


SOURCES = [
    "000,fff",
    "fff,000",
    "f00,0f0,00f",
    "0:000,80:f00,ff:fff",
    "00:f00,20:0f0,ff:00f",
    "123456,abcdef",
    "f00,80:0f0,00f",
    "000, 7f:fff, 000",
    "0:00f,7f:fff,80:fff,ff:f00",
    "a0:f00,ff:0f0",
    "000000,ffffff,808080",
]


@pytest.mark.parametrize("level", [1.0, 0.7])
@pytest.mark.parametrize("source", SOURCES)
def test_colormap_source_language_matches_zennit(source, level):
    """ColorMap(source).palette(level): hex colours (3 or 6 digits), optional 'index:' prefixes
    (two hex digits), spaces, linear interpolation between the nodes."""
    ours = lrp_core.cmap.ColorMap(source).palette(level=level)
    theirs = zennit.cmap.ColorMap(source).palette(level=level)
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(
        lrp_core.image.palette(source, level), zennit.image.palette(source, level)
    )


IMGIFY_CASES = {
    "2d": ((6, 5), {}),
    "2d-gray": ((6, 5), {"cmap": "gray"}),
    "2d-level": ((6, 5), {"cmap": "coldnhot", "level": 2.0}),
    "2d-symmetric": ((6, 5), {"symmetric": True}),
    "2d-vmin-vmax": ((6, 5), {"vmin": -0.5, "vmax": 1.5}),
    "2d-vmin-vmax-symmetric": ((6, 5), {"vmin": -0.5, "vmax": 1.5, "symmetric": True}),
    "1hw": ((1, 6, 5), {"cmap": "hot"}),
    "hw1": ((6, 5, 1), {"cmap": "wred"}),
    "3hw": ((3, 6, 5), {}),
    "hw3": ((6, 5, 3), {}),
    "3hw-vmin-vmax": ((3, 6, 5), {"vmin": -1.0, "vmax": 1.0}),
    "grid-n1hw": ((4, 1, 6, 5), {"grid": True}),
    "grid-n3hw": ((3, 3, 6, 5), {"grid": True, "symmetric": True}),
    "grid-shape": ((4, 1, 6, 5), {"grid": (1, 4), "cmap": "seismic"}),
    "grid-shape-fill": ((3, 1, 6, 5), {"grid": (2, 2), "gridfill": 0.5}),
    "grid-nhw": ((4, 6, 5), {"grid": True}),
    "colormap-object": ((6, 5), {"cmap": "ColorMap"}),
}


@pytest.mark.parametrize("case", list(IMGIFY_CASES))
def test_imgify_pixels_match_zennit(case):
    """np.asarray(imgify(obj, ...)): mode, size and every pixel value."""
    shape, kwargs = IMGIFY_CASES[case]
    array = random(shape, seed=3)
    ours_kwargs, theirs_kwargs = dict(kwargs), dict(kwargs)
    if kwargs.get("cmap") == "ColorMap":
        ours_kwargs["cmap"] = lrp_core.cmap.ColorMap("00f,80:fff,f00")
        theirs_kwargs["cmap"] = zennit.cmap.ColorMap("00f,80:fff,f00")
    ours = lrp_core.image.imgify(array, **ours_kwargs)
    theirs = zennit.image.imgify(array, **theirs_kwargs)
    assert ours.mode == theirs.mode and ours.size == theirs.size
    np.testing.assert_array_equal(pixels(ours), pixels(theirs))


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # Zennit's
@pytest.mark.parametrize("dtype", ["uint8", "float-01", "tensor"])
def test_imgify_of_other_inputs_matches_zennit(dtype):
    """uint8 images, values in [0, 1] and torch tensors."""
    import torch

    array = random((3, 6, 5), seed=4, positive=True)
    if dtype == "uint8":
        array = (255 * array / array.max()).astype(np.uint8)
    elif dtype == "float-01":
        array = array / array.max()
    else:
        array = torch.from_numpy(array)
    ours = lrp_core.image.imgify(array)
    theirs = zennit.image.imgify(array)
    assert ours.mode == theirs.mode
    np.testing.assert_array_equal(pixels(ours), pixels(theirs))


GRIDIFY_CASES = {
    "n1hw": ((4, 1, 3, 2), {}),
    "n3hw": ((5, 3, 3, 2), {}),
    "nhw": ((3, 3, 2), {}),
    "shape": ((4, 1, 3, 2), {"shape": (4, 1)}),
    "shape-fill": ((3, 3, 3, 2), {"shape": (2, 2), "fill_value": -1.0}),
    "fill": ((5, 1, 3, 2), {"fill_value": 7.0}),
}


@pytest.mark.parametrize("case", list(GRIDIFY_CASES))
def test_gridify_matches_zennit(case):
    shape, kwargs = GRIDIFY_CASES[case]
    array = random(shape, seed=5)
    ours = lrp_core.image.gridify(array, **kwargs)
    theirs = zennit.image.gridify(array, **kwargs)
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"symmetric": True}, {"dim": (1,)}, {"dim": (0, 2)}, {"symmetric": True, "dim": (1, 2)}],
    ids=str,
)
def test_interval_norm_bounds_match_zennit(kwargs):
    """(vmin, vmax) per sample (default: over all non-batch axes), optionally symmetric."""
    array = random((3, 4, 5), seed=6)
    ours = lrp_core.image.interval_norm_bounds(array, **kwargs)
    theirs = zennit.image.interval_norm_bounds(array, **kwargs)
    for mine, reference in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(mine, reference, rtol=0, atol=0)


def test_interval_norm_bounds_positional_symmetric_matches_zennit():
    """Zennit's signature is (input, symmetric=False, dim=None): positional calls must work."""
    array = random((2, 4, 5), seed=7)
    ours = lrp_core.image.interval_norm_bounds(array, True, (1, 2))
    theirs = zennit.image.interval_norm_bounds(array, True, (1, 2))
    for mine, reference in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(mine, reference)


def test_imsave_writes_the_same_png_as_zennit(tmp_path):
    """imsave with positional arguments in Zennit's order (…, level, grid) writes the same pixels
    (Zennit's palette images need the repair of ``pixels`` first, so RGB data is saved here)."""
    from PIL import Image

    batch = random((3, 3, 6, 5), seed=8)
    lrp_core.image.imsave(tmp_path / "ours.png", batch, None, None, "bwr", 1.0, True)
    zennit.image.imsave(tmp_path / "theirs.png", batch, None, None, "bwr", 1.0, True)
    with Image.open(tmp_path / "ours.png") as ours, Image.open(tmp_path / "theirs.png") as theirs:
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
