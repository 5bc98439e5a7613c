"""Static export of the Compare grid: normalisation, difference view, axes, colour bars, PNG.

Reference maths (the contract, also used by the page): per cell ``m = sum_c R`` ``[H, W]``;
difference view with reference r: column c != r shows ``m_c - m_r``; the scale ``s`` is taken
over all values of the group (grid / row / cell): ``scale_by="percentile"`` (default)
``np.percentile(|values|, 99, method="lower")``, ``scale_by="max"`` ``max |value|``; a value v is
drawn with the colour at ``(v / s + 1) / 2``, i.e. ``clim = (-s, s)`` (beyond: the end
colours). Expected values are computed here with numpy from ``compare.relevance(name)``,
independently of ``compare._figure``.
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
from lrp_widgets.compare._figure import cell_scales, colormap, grid_figure, group_scale

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


def expected_scales(
    maps: np.ndarray, normalization: str, scale_by: str = "percentile"
) -> np.ndarray:
    """s per cell ``[N, K]``: the statistic of |values| over each cell's whole group."""

    def statistic(values: np.ndarray, axis) -> np.ndarray:
        if scale_by == "max":
            return np.abs(values).max(axis=axis)
        return np.percentile(np.abs(values), 99, axis=axis, method="lower")

    if normalization == "grid":
        return np.full((N, K), statistic(maps, None))
    if normalization == "row":
        return np.repeat(statistic(maps, (1, 2, 3))[:, None], K, axis=1)
    return statistic(maps, (2, 3))


@pytest.mark.parametrize("scale_by", ["percentile", "max"])
@pytest.mark.parametrize(("normalization", "bars"), [("grid", 1), ("row", N), ("cell", N * K)])
def test_normalisation_groups(grid: Compare, normalization: str, bars: int, scale_by: str):
    figure = grid.to_figure(normalization=normalization, scale_by=scale_by)
    maps = maps_of(grid)
    arrays, clims = shown(figure)
    np.testing.assert_allclose(arrays, maps, rtol=1e-6, atol=1e-12)
    s = expected_scales(maps, normalization, scale_by)
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


def test_percentile_scale_ignores_one_outlier_pixel():
    # 1 outlier among 2 x 10 x 10 = 200 values: "max" gives s = 1000 (every other cell pale),
    # "percentile" the element floor(0.99 * 199) = 197 of the sorted |values|, i.e. the 3rd
    # largest, so the outlier (and the 2nd largest) take the end colours.
    rng = np.random.default_rng(0)
    maps = rng.uniform(-1, 1, size=(1, 2, 10, 10))
    maps[0, 1, 4, 5] = -1000.0
    magnitudes = np.sort(np.abs(maps).ravel())
    assert cell_scales(maps, "grid", "max").tolist() == [[1000.0, 1000.0]]
    assert cell_scales(maps, "grid").tolist() == [[magnitudes[197]] * 2]  # the default
    assert magnitudes[197] < 1.0
    # per cell: 100 values, element floor(0.99 * 99) = 98; only the outlier's cell differs
    per_cell = cell_scales(maps, "cell", "percentile")
    assert per_cell[0, 0] == np.sort(np.abs(maps[0, 0]).ravel())[98]
    assert per_cell[0, 1] == np.sort(np.abs(maps[0, 1]).ravel())[98] < 1.0
    assert cell_scales(maps, "cell", "max")[0, 1] == 1000.0
    # drawn: the outlier at the first colour, clim = (-s, s) in both modes
    figure = grid_figure(maps, per_cell, "cell", colormap("bwr"), ["a", "b"], ["0"])
    image = figure.cell_axes[0][1].get_images()[-1]
    np.testing.assert_allclose(image.get_clim(), (-per_cell[0, 1], per_cell[0, 1]))
    first = CMAPS["bwr"].palette()[0]
    np.testing.assert_array_equal(image.to_rgba(np.array([-1000.0]), bytes=True)[0, :3], first)


def test_scale_ignores_values_that_are_not_finite():
    maps = np.array([[[[1.0, -2.0, np.nan, np.inf]]]])
    assert cell_scales(maps, "cell", "max").tolist() == [[2.0]]
    assert cell_scales(maps, "cell").tolist() == [[1.0]]  # 2 finite values: element floor(0.99)
    assert group_scale(np.array([np.nan]), "percentile") == 0.0
    with pytest.raises(ValueError, match="scale_by must be one of"):
        cell_scales(maps, "cell", "median")


def test_traits_are_the_defaults(grid: Compare):
    grid.normalization, grid.cmap = "cell", "gray"
    figure = grid.to_figure()
    assert len(figure.colorbars) == N * K
    assert figure.cell_axes[0][0].get_images()[-1].get_cmap().name == "gray"
    grid.normalization, grid.cmap = "grid", "bwr"
    assert grid.scale_by == "percentile"
    maps = maps_of(grid)
    for scale_by in ("max", "percentile"):
        grid.scale_by = scale_by
        clim = grid.to_figure().cell_axes[0][0].get_images()[-1].get_clim()
        assert clim[1] == pytest.approx(expected_scales(maps, "grid", scale_by)[0, 0], rel=1e-6)
    overlay = grid.to_figure(show="overlay", show_inputs=True)
    assert len(overlay.axes) == N * (K + 1) + 1
    assert len(overlay.cell_axes[0][0].get_images()) == 2  # grey input under the map
    with pytest.raises(ValueError, match="normalization must be one of"):
        grid.to_figure(normalization="page")
    with pytest.raises(ValueError, match="scale_by must be one of"):
        grid.to_figure(scale_by="p99")
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
    # max: |v| <= s for every value of a cell, s is constant over the group and reached in it.
    # percentile: s is one of the group's |values|, at most the max, and at least
    # floor(0.99 (n - 1)) + 1 of the group's n values fit in [-s, s].
    scales = cell_scales(maps, normalization, "max")
    peaks = np.abs(maps).max(axis=(2, 3))
    assert (peaks <= scales).all()
    if normalization == "grid":
        assert (scales == peaks.max()).all()
    elif normalization == "row":
        assert (scales == peaks.max(axis=1, keepdims=True)).all()
    else:
        assert (scales == peaks).all()
    robust = cell_scales(maps, normalization, "percentile")
    assert (robust <= scales).all()
    n, k = maps.shape[:2]
    for i in range(n):
        for j in range(k):
            group = {"grid": maps, "row": maps[i], "cell": maps[i, j]}[normalization]
            magnitudes = np.abs(group).ravel()
            assert robust[i, j] in magnitudes
            fitting = int((magnitudes <= robust[i, j]).sum())
            assert fitting >= int(np.floor(0.99 * (magnitudes.size - 1))) + 1
