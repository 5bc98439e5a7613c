"""Static export of the Compare grid with matplotlib: the same normalisation maths as the page.

Per cell the map is ``m = relevance summed over channels`` ``[H, W]``. In the difference view
(reference column r) every other column c shows ``m_c - m_r``; r shows its own map. The scale
``s`` is taken over all finite values of the group (whole grid, the row, or the cell) together:
with ``scale_by="percentile"`` (default) the 99th percentile of ``|value|``, i.e. element
``floor(0.99 * (n - 1))`` of the n finite ``|values|`` sorted ascending (as the Explorer's
heatmap; ``np.percentile(|v|, 99, method="lower")``), so one extreme pixel does not wash out
the other maps; with ``scale_by="max"`` the largest ``|value|``. A value ``v`` gets the
colormap's colour at ``(v / s + 1) / 2`` clipped to [0, 1] (values beyond ``±s`` take the end
colours; ``s = 0``: the middle), which is what ``imshow`` with ``clim = (-s, s)`` draws. One
colour bar per scale, labelled ``±s``.

Only the object-oriented ``matplotlib.figure.Figure`` API is used (no pyplot state), so this
works with any backend, including headless ``Agg``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from lrp_widgets._color_scale import SCALE_BY, colormap, group_scale
from lrp_widgets._payload import display_images

NORMALIZATIONS = ("grid", "row", "cell")


def cell_maps(relevances: Sequence[np.ndarray], reference: int | None = None) -> np.ndarray:
    """Displayed maps ``[N, K, H, W]`` (float64) from K relevances ``[N, C, H, W]``.

    ``reference``: index of the difference reference column, or None for plain maps.
    """
    maps = np.stack([np.asarray(r, dtype=np.float64).sum(axis=1) for r in relevances], axis=1)
    if reference is None:
        return maps
    shown = maps - maps[:, reference : reference + 1]
    shown[:, reference] = maps[:, reference]
    return shown


def cell_scales(maps: np.ndarray, normalization: str, scale_by: str = "percentile") -> np.ndarray:
    """Scale ``s`` of every cell ``[N, K]`` of ``maps`` ``[N, K, H, W]``: ``group_scale`` over all
    values of its group (see the module doc).

    Raises
    ------
    ValueError
        an unknown normalization or ``scale_by``.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if scale_by not in SCALE_BY:
        raise ValueError(f"scale_by must be one of {SCALE_BY}, got {scale_by!r}")
    n, k = maps.shape[:2]
    if normalization == "cell":
        return np.array(
            [[group_scale(maps[i, j], scale_by) for j in range(k)] for i in range(n)]
        ).reshape(n, k)
    if normalization == "row":
        rows = np.array([group_scale(maps[i], scale_by) for i in range(n)]).reshape(n, 1)
        return np.repeat(rows, k, axis=1)
    return np.full((n, k), group_scale(maps, scale_by))


def grid_figure(
    maps: np.ndarray,
    scales: np.ndarray,
    normalization: str,
    cmap: ListedColormap,
    column_titles: Sequence[str],
    row_labels: Sequence[str],
    images: np.ndarray | None = None,
    show_inputs: bool = False,
    overlay: bool = False,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """The grid as a figure: one image axes per cell (``figure.cell_axes[row][column]``, the map
    drawn with ``clim = (-s, s)``), titles on top, row labels on the left and the colour bars
    (one per scale group) as ``figure.colorbars``.

    ``images``: uint8 ``[N, H, W, 3]`` inputs, shown in an extra first column if
    ``show_inputs`` and under the maps (grey, maps at 60 % opacity) if ``overlay``.
    """
    n, k = maps.shape[:2]
    extra = 1 if show_inputs and images is not None else 0
    bars = 0.9 * k if normalization == "cell" else 1.0
    figure = Figure(
        figsize=figsize or (2.0 * (k + extra) + bars, 2.0 * n + 0.6), layout="constrained"
    )
    axes = figure.subplots(n, k + extra, squeeze=False)
    cell_axes = [[axes[i][j + extra] for j in range(k)] for i in range(n)]
    mappables = []
    for i in range(n):
        row = []
        for j in range(k):
            ax = cell_axes[i][j]
            s = float(scales[i, j]) or 1.0  # s = 0: every value is 0, drawn at the middle
            if overlay and images is not None:
                grey = images[i].astype(np.float64).mean(axis=2)
                ax.imshow(grey, cmap="gray", vmin=0, vmax=255)
            alpha = 0.6 if overlay and images is not None else None
            row.append(ax.imshow(maps[i, j], cmap=cmap, vmin=-s, vmax=s, alpha=alpha))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(column_titles[j], fontsize=9)
        mappables.append(row)
        if extra:
            axes[i][0].imshow(images[i])
            axes[i][0].set_xticks([])
            axes[i][0].set_yticks([])
            if i == 0:
                axes[i][0].set_title("input", fontsize=9)
        axes[i][0].set_ylabel(row_labels[i], fontsize=9)
    figure.cell_axes = cell_axes
    figure.colorbars = _colorbars(figure, cell_axes, mappables, scales, normalization)
    return figure


def _colorbars(figure, cell_axes, mappables, scales, normalization) -> list:
    n, k = len(cell_axes), len(cell_axes[0]) if cell_axes else 0
    if normalization == "grid":
        groups = [([ax for row in cell_axes for ax in row], mappables[0][0], scales[0, 0])]
    elif normalization == "row":
        groups = [(cell_axes[i], mappables[i][0], scales[i, 0]) for i in range(n)]
    else:
        groups = [
            ([cell_axes[i][j]], mappables[i][j], scales[i, j]) for i in range(n) for j in range(k)
        ]
    bars = []
    for axes, mappable, s in groups:
        bar = figure.colorbar(mappable, ax=axes, shrink=0.9, pad=0.02)
        low, high = mappable.get_clim()
        bar.set_ticks([low, 0.0, high])
        bar.set_ticklabels([f"-{s:.3g}", "0", f"+{s:.3g}"])
        bar.ax.tick_params(labelsize=7)
        bars.append(bar)
    return bars


def _reference_index(reference: int | str, columns: Sequence[Any]) -> int | None:
    """Position of the difference reference (a column id or name) among ``columns``; None for
    no difference view."""
    ids = [column.id for column in columns]
    names = [column.name for column in columns]
    if isinstance(reference, str):
        if reference not in names:
            raise ValueError(f"reference {reference!r} is not a column; columns: {names}")
        return names.index(reference)
    if reference == -1 or reference not in ids:
        return None  # e.g. the page still points at a removed column: no difference view
    return ids.index(reference)


def compare_figure(
    compare: Any,
    columns: Sequence[Any],
    *,
    normalization: str | None = None,
    scale_by: str | None = None,
    cmap: str | None = None,
    reference: int | str | None = None,
    show: str | None = None,
    show_inputs: bool = False,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """The grid of a ``Compare`` widget's ``columns``; arguments left None take its traits.

    ``scale_by``: ``"percentile"`` or ``"max"`` (see the module doc);
    ``reference``: a column id or name (-1: no difference view); ``show``: ``"heatmap"`` or
    ``"overlay"`` (maps over the grey inputs); ``show_inputs``: an extra first column with the
    inputs. Row labels give the row index and the explained class.

    Raises
    ------
    ValueError
        an unknown normalization, scale_by, colormap, show value or reference
        column.
    """
    normalization = compare.normalization if normalization is None else normalization
    scale_by = compare.scale_by if scale_by is None else scale_by
    cmap_name = compare.cmap if cmap is None else cmap
    show = compare.show if show is None else show
    if show not in ("heatmap", "overlay"):
        raise ValueError(f"show must be 'heatmap' or 'overlay', got {show!r}")
    if not columns:
        raise ValueError("the grid has no columns to draw; add one with add_column(...)")
    names = [column.name for column in columns]
    index = _reference_index(compare.reference if reference is None else reference, columns)
    maps = cell_maps([column.result.relevance.detach().numpy() for column in columns], index)
    titles = [
        name if index is None or j == index else f"{name} − {names[index]}"
        for j, name in enumerate(names)
    ]
    classes, class_names = compare.classes, compare.class_names
    labels = [
        f"{i}: {class_names[c] if c < len(class_names) else c}" for i, c in enumerate(classes)
    ]
    need_images = show_inputs or show == "overlay"
    images = display_images(compare.live.inputs) if need_images else None
    return grid_figure(
        maps,
        cell_scales(maps, normalization, scale_by),
        normalization,
        colormap(cmap_name),
        titles,
        labels,
        images=images,
        show_inputs=show_inputs,
        overlay=show == "overlay",
        figsize=figsize,
    )
