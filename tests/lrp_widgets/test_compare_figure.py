"""Static export of the Compare grid: normalisation, difference view, axes, colour bars, PNG.

Reference maths (the contract, also used by the page): per cell ``m = sum_c R`` ``[H, W]``;
difference view with reference r: column c != r shows ``m_c - m_r``; the scale ``s`` is
``max |value|`` over the group (grid / row / cell) and a value v is drawn with the colour at
``(v / s + 1) / 2``, i.e. ``clim = (-s, s)``. Expected values are computed here with numpy from
``compare.relevance(name)``, independently of ``_compare_figure``.
"""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest
from _compare_helpers import batch, small_model
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from matplotlib.figure import Figure

from lrp_core.cmap import CMAPS
from lrp_widgets import Compare
from lrp_widgets._compare_figure import cell_scales, colormap, grid_figure

N, K = 3, 3


@pytest.fixture(scope="module")
def grid() -> Compare:
    inputs, masks = batch()
    widget = Compare(small_model(), inputs, ["EpsilonPlusFlat", "EpsilonGammaBox", None],
                     masks=masks, class_names=["a", "b", "c", "d"])  # fmt: skip
    yield widget
    widget.close()


def maps_of(grid: Compare) -> np.ndarray:
    """``[N, K, H, W]`` channel sums, float64."""
    return np.stack(
        [grid.relevance(name).double().sum(1).numpy() for name in grid.column_names], axis=1
    )


def shown(figure: Figure) -> tuple[np.ndarray, np.ndarray]:
    """Arrays ``[N, K, H, W]`` and clims ``[N, K, 2]`` of every cell's relevance image."""
    images = [[ax.get_images()[-1] for ax in row] for row in figure.cell_axes]
    arrays = np.array([[np.asarray(im.get_array()) for im in row] for row in images])
    clims = np.array([[im.get_clim() for im in row] for row in images])
    return arrays, clims


def expected_scales(maps: np.ndarray, normalization: str) -> np.ndarray:
    absolute = np.abs(maps)
    if normalization == "grid":
        return np.full((N, K), absolute.max())
    if normalization == "row":
        return np.repeat(absolute.max(axis=(1, 2, 3))[:, None], K, axis=1)
    return absolute.max(axis=(2, 3))


@pytest.mark.parametrize(("normalization", "bars"), [("grid", 1), ("row", N), ("cell", N * K)])
def test_normalisation_groups(grid: Compare, normalization: str, bars: int):
    figure = grid.to_figure(normalization=normalization)
    maps = maps_of(grid)
    arrays, clims = shown(figure)
    np.testing.assert_allclose(arrays, maps, rtol=1e-6, atol=1e-12)
    s = expected_scales(maps, normalization)
    np.testing.assert_allclose(clims[..., 1], s, rtol=1e-6)
    np.testing.assert_allclose(clims[..., 0], -s, rtol=1e-6)
    # rows x columns image axes plus one colour bar per scale, labelled with -s, 0, +s
    assert len(figure.axes) == N * K + bars
    assert len(figure.colorbars) == bars
    for bar in figure.colorbars:
        labels = [t.get_text() for t in bar.ax.get_yticklabels()]
        low, high = bar.mappable.get_clim()
        assert labels == [f"-{high:.3g}", "0", f"+{high:.3g}"] and low == -high
    titles = [ax.get_title() for ax in figure.cell_axes[0]]
    assert titles == grid.column_names
    labels = [row[0].get_ylabel() for row in figure.cell_axes]
    assert labels == [f"{i}: {'abcd'[c]}" for i, c in enumerate(grid.classes)]


def test_colours_follow_the_palette(grid: Compare):
    figure = grid.to_figure(cmap="coldnhot", normalization="grid")
    image = figure.cell_axes[0][0].get_images()[-1]
    s = image.get_clim()[1]
    palette = CMAPS["coldnhot"].palette()
    # colour of v is the palette at (v / s + 1) / 2: -s -> first entry, 0 -> middle, s -> last
    rgba = image.to_rgba(np.array([-s, 0.0, s]), bytes=True)[:, :3]
    np.testing.assert_array_equal(rgba, palette[[0, 128, 255]])


def test_difference_view(grid: Compare):
    reference_id = grid.columns[1]["id"]
    figure = grid.to_figure(reference=reference_id, normalization="row")
    maps = maps_of(grid)
    expected = maps - maps[:, 1:2]  # m_c - m_r
    expected[:, 1] = maps[:, 1]  # the reference shows its own map
    arrays, clims = shown(figure)
    np.testing.assert_allclose(arrays, expected, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(clims[..., 1], expected_scales(expected, "row"), rtol=1e-6)
    names = grid.column_names
    assert [ax.get_title() for ax in figure.cell_axes[0]] == [
        f"{names[0]} − {names[1]}",
        names[1],
        f"{names[2]} − {names[1]}",
    ]
    by_name = grid.to_figure(reference=names[1], normalization="row")
    np.testing.assert_array_equal(shown(by_name)[0], arrays)
    with pytest.raises(ValueError, match="is not a column"):
        grid.to_figure(reference="nope")


def test_traits_are_the_defaults(grid: Compare):
    grid.normalization, grid.cmap = "cell", "gray"
    figure = grid.to_figure()
    assert len(figure.colorbars) == N * K
    assert figure.cell_axes[0][0].get_images()[-1].get_cmap().name == "gray"
    grid.normalization, grid.cmap = "grid", "bwr"
    overlay = grid.to_figure(show="overlay", show_inputs=True)
    assert len(overlay.axes) == N * (K + 1) + 1
    assert len(overlay.cell_axes[0][0].get_images()) == 2  # grey input under the map
    with pytest.raises(ValueError, match="normalization must be one of"):
        grid.to_figure(normalization="page")
    with pytest.raises(ValueError, match="unknown colormap"):
        grid.to_figure(cmap="viridis2")


def test_save_writes_a_png(grid: Compare, tmp_path):
    path = grid.save(tmp_path / "grid.png", dpi=50, figsize=(8.0, 6.0))
    picture = matplotlib.image.imread(path)
    assert picture.shape[:2] == (300, 400)  # figsize x dpi
    assert picture.std() > 0  # not a blank canvas


def test_zero_scale_draws_the_middle_colour():
    maps = np.zeros((1, 2, 4, 4))
    scales = cell_scales(maps, "grid")
    assert scales.tolist() == [[0.0, 0.0]]
    figure = grid_figure(maps, scales, "grid", colormap("bwr"), ["a", "b"], ["0"])
    image = figure.cell_axes[0][1].get_images()[-1]
    middle = CMAPS["bwr"].palette()[128]
    np.testing.assert_array_equal(image.to_rgba(np.zeros(1), bytes=True)[0, :3], middle)


@settings(max_examples=40, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(*[st.integers(1, 3)] * 2, st.just(2), st.just(3)),
        elements=st.floats(-1e3, 1e3),
    ),  # fmt: skip
    st.sampled_from(["grid", "row", "cell"]),
)
def test_every_value_fits_its_scale_and_the_group_reaches_it(maps, normalization):
    # |v| <= s for every value of a cell, s is constant over the group and reached in it
    scales = cell_scales(maps, normalization)
    peaks = np.abs(maps).max(axis=(2, 3))
    assert (peaks <= scales).all()
    if normalization == "grid":
        assert (scales == peaks.max()).all()
    elif normalization == "row":
        assert (scales == peaks.max(axis=1, keepdims=True)).all()
    else:
        assert (scales == peaks).all()
