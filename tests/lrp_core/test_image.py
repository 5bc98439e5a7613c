"""Tests for lrp_core.image: normalisation, colour mapping, grids and saving.

Reference semantics: ``scaled = clip((x - vmin) / (vmax - vmin), 0, 1)`` with vmin/vmax the array's
min/max unless given; symmetric: the computed bounds become ``-a, a`` with
``a = max(|min|, |max|)``, and a given vmin/vmax replaces the computed bound afterwards; 8-bit
value / palette index ``floor(255 * scaled)`` (truncation, as the reference library). With
``grid`` each sample is normalised on its own, and the pixel images are tiled.
"""

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lrp_core.cmap import CMAPS
from lrp_core.image import gridify, imgify, imsave, interval_norm_bounds, palette


def reference_indices(x, vmin=None, vmax=None, symmetric=False):
    low, high = x.min(), x.max()
    if symmetric:
        high = max(abs(low), abs(high))
        low = -high
    low = low if vmin is None else vmin
    high = high if vmax is None else vmax
    return np.floor(np.clip((x - low) / (high - low), 0, 1) * 255).astype(np.uint8)


def roundtrip(image, fmt="PNG"):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    buffer.seek(0)
    reloaded = Image.open(buffer)
    reloaded.load()
    return reloaded


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_2d_gives_palette_image_that_survives_png(rng):
    x = rng.normal(size=(5, 7))
    image = imgify(x, cmap="hot")
    assert image.mode == "P" and image.size == (7, 5)
    np.testing.assert_array_equal(np.asarray(image), reference_indices(x))
    reloaded = roundtrip(image)
    np.testing.assert_array_equal(np.asarray(reloaded), reference_indices(x))
    rgb = np.asarray(reloaded.convert("RGB"))
    np.testing.assert_array_equal(rgb, CMAPS["hot"].palette()[reference_indices(x)])


def test_torch_and_numpy_give_the_same_image(rng):
    x = rng.normal(size=(4, 6)).astype(np.float32)
    from_numpy = np.asarray(imgify(x).convert("RGB"))
    from_torch = np.asarray(imgify(torch.from_numpy(x).requires_grad_()).convert("RGB"))
    np.testing.assert_array_equal(from_numpy, from_torch)


def test_symmetric_maps_zero_to_the_palette_middle():
    x = np.array([[-2.0, 0.0, 1.0]])
    indices = np.asarray(imgify(x, symmetric=True))
    # bounds [-2, 2]: -2 -> 0, 0 -> floor(127.5) = 127 (the middle), 1 -> floor(191.25) = 191
    np.testing.assert_array_equal(indices, [[0, 127, 191]])
    middle = np.asarray(imgify(x, symmetric=True, cmap="bwr").convert("RGB"))[0, 1]
    assert (middle >= 250).all()  # white, bwr's middle colour


def test_vmin_vmax_clip(rng):
    x = np.array([[-5.0, 0.0, 0.25, 0.5, 3.0]])
    indices = np.asarray(imgify(x, vmin=0.0, vmax=0.5))
    # 0.25 -> floor(0.5 * 255) = 127
    np.testing.assert_array_equal(indices, [[0, 0, 127, 255, 255]])


def test_constant_input_does_not_divide_by_zero():
    # zero width: 0.5 (the middle, floor(127.5) = 127) when symmetric, else 0
    assert np.asarray(imgify(np.zeros((2, 2)), symmetric=True)).tolist() == [[127, 127]] * 2
    assert np.asarray(imgify(np.ones((2, 2)))).tolist() == [[0, 0]] * 2


@pytest.mark.parametrize("layout", ["chw", "hwc"])
def test_3d_rgb_channel_first_and_last(rng, layout):
    hwc = rng.uniform(size=(4, 5, 3))
    obj = hwc.transpose(2, 0, 1) if layout == "chw" else hwc
    image = roundtrip(imgify(obj))
    assert image.mode == "RGB" and image.size == (5, 4)
    np.testing.assert_array_equal(np.asarray(image), reference_indices(hwc))


def test_single_channel_is_colour_mapped(rng):
    x = rng.normal(size=(1, 3, 4))
    image = imgify(x)
    assert image.mode == "P" and image.size == (4, 3)
    np.testing.assert_array_equal(np.asarray(image), reference_indices(x[0]))


def test_level_changes_the_palette(rng):
    x = rng.normal(size=(3, 3))
    image = imgify(x, cmap="bwr", level=2.0)
    assert image.getpalette()[:768] == list(palette("bwr", level=2.0).reshape(-1))


def test_custom_colour_map_source_and_unknown_name():
    image = imgify(np.array([[0.0, 1.0]]), cmap="000,fff")
    np.testing.assert_array_equal(np.asarray(image.convert("RGB"))[0, :, 0], [0, 255])
    with pytest.raises(ValueError, match="built-in"):
        imgify(np.zeros((2, 2)), cmap="nonexistent")


def test_gridify_shapes_and_cells(rng):
    batch = rng.normal(size=(5, 2, 3))
    grid = gridify(batch)[..., 0]  # cols = floor(sqrt(5)) = 2, rows = ceil(5 / 2) = 3; C = 1
    assert grid.shape == (6, 6)
    for number in range(5):
        row, col = divmod(number, 2)
        np.testing.assert_array_equal(
            grid[row * 2 : row * 2 + 2, col * 3 : col * 3 + 3], batch[number]
        )
    np.testing.assert_array_equal(grid[4:6, 3:6], np.full((2, 3), batch.min()))
    assert gridify(batch, shape=(1, 5)).shape == (2, 15, 1)
    assert gridify(batch, shape=(5, 1), fill_value=7.0).shape == (10, 3, 1)
    filled = gridify(batch, shape=(2, 4), fill_value=7.0)
    np.testing.assert_array_equal(filled[2:4, 3:12, 0], np.full((2, 9), 7.0))


def test_gridify_channel_first_and_last(rng):
    nchw = rng.normal(size=(4, 3, 2, 5))
    grid = gridify(torch.from_numpy(nchw))  # 2 × 2; empty cells: each channel's minimum
    assert grid.shape == (4, 10, 3)
    np.testing.assert_array_equal(grid[2:4, 5:10], nchw[3].transpose(1, 2, 0))
    np.testing.assert_array_equal(gridify(nchw.transpose(0, 2, 3, 1)), grid)


def test_imgify_grid_4d(rng):
    batch = rng.uniform(size=(5, 3, 4, 6))
    image = roundtrip(imgify(batch, grid=True))
    assert image.mode == "RGB" and image.size == (12, 12)  # 3 rows × 2 columns
    per_sample = np.stack([reference_indices(sample) for sample in batch]).astype(np.float64)
    np.testing.assert_array_equal(np.asarray(image), gridify(per_sample).astype(np.uint8))
    filled = np.asarray(imgify(batch, grid=True, gridfill=7))
    np.testing.assert_array_equal(filled[8:, 6:], np.full((4, 6, 3), 7))  # pixel value 7
    assert imgify(batch, grid=(1, 5)).size == (30, 4)
    assert imgify(batch[:, 0], grid=(5, 1)).size == (6, 20)


def test_imsave_writes_the_imgify_pixels(rng, tmp_path):
    x = rng.normal(size=(6, 4))
    path = tmp_path / "heat.png"
    imsave(path, x, cmap="coldnhot", symmetric=True, writer_params={"compress_level": 1})
    with Image.open(path) as saved:
        np.testing.assert_array_equal(
            np.asarray(saved.convert("RGB")),
            np.asarray(imgify(x, cmap="coldnhot", symmetric=True).convert("RGB")),
        )
    buffer = io.BytesIO()
    imsave(buffer, rng.uniform(size=(3, 2, 2)), format="PNG")
    assert buffer.getvalue().startswith(b"\x89PNG")


def test_interval_norm_bounds_per_sample():
    x = np.array([[[-1.0, 3.0]], [[2.0, 4.0]]])
    low, high = interval_norm_bounds(x)  # default: over all axes but the first
    np.testing.assert_array_equal(low.ravel(), [-1, 2])
    np.testing.assert_array_equal(high.ravel(), [3, 4])
    low, high = interval_norm_bounds(torch.from_numpy(x), True, (0, 1, 2))
    assert low.item() == -4 and high.item() == 4
    # given bounds replace the computed (symmetric) ones: vmax stays 4 = max |x|
    low, high = interval_norm_bounds(x, symmetric=True, dim=(0, 1, 2), vmin=-1.0)
    assert low.item() == -1 and high.item() == 4


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: imgify(np.zeros((2, 3, 4, 5))), ValueError, "grid=True"),
        (lambda: imgify(np.zeros((5, 4, 4))), ValueError, "grid=True"),
        (lambda: imgify(np.zeros(5)), ValueError, "shape"),
        (lambda: imgify(np.array([[np.nan]])), ValueError, "NaN"),
        (lambda: imgify(np.zeros((2, 2)), vmin=1.0, vmax=0.0), ValueError, "vmin"),
        (lambda: imgify("not an array"), TypeError, "obj"),
        (lambda: imgify(np.zeros((2, 2, 2)), grid=3), ValueError, "grid"),
        (lambda: gridify(np.zeros((5, 2, 2)), shape=(2, 2)), ValueError, "shape"),
        (lambda: gridify(np.zeros((5, 4, 2, 2))), ValueError, "channel"),
        (lambda: imgify(np.zeros((2, 2)), cmap=3), TypeError, "cmap"),
    ],
)
def test_bad_input_raises_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_importing_image_does_not_import_matplotlib():
    code = "import sys, lrp_core.image; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
