"""Static picture of the Explorer with matplotlib: one sample's input and its relevance map.

The map is ``m = relevance summed over channels`` ``[H, W]`` (non-image inputs: ``[1, D]``).
Its colour scale ``s`` is, as on the page, the 99th percentile of the finite ``|m|`` (element
``floor(0.99 * (n - 1))`` of them sorted ascending, ``scale_by="percentile"``) or their largest
value (``"max"``); ``v`` is drawn with ``clim = (-s, s)`` and the colour bar is labelled ``±s``.

Only the object-oriented ``matplotlib.figure.Figure`` API is used (no pyplot state), so this
works with any backend, including headless ``Agg``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from lrp_widgets._color_scale import colormap, group_scale
from lrp_widgets._payload import display_images
from lrp_widgets.explorer._traits import ExplorerTraits


def relevance_map(relevance: torch.Tensor, sample: int) -> np.ndarray:
    """The displayed map of one sample (float64): channels summed for images ``[N, C, H, W]``,
    a ``[1, D]`` strip for any other shape."""
    r = relevance[sample].detach().to(torch.float64).cpu().numpy()
    if relevance.ndim == 4:
        return r.sum(axis=0)
    return r.reshape(1, -1)


def class_label(index: int, class_names: Sequence[str]) -> str:
    """``class 3 (cat)``, or ``class 3`` when the class has no name of its own."""
    named = index < len(class_names) and class_names[index] != str(index)
    return f"class {index} ({class_names[index]})" if named else f"class {index}"


def explained_class(explorer: ExplorerTraits, sample: int) -> str:
    """The class the Explorer's heatmap explains for ``sample`` (``""`` when unknown)."""
    classes = (explorer.heatmap or {}).get("classes") or []
    return class_label(classes[sample], explorer.class_names) if sample < len(classes) else ""


def explorer_summary(explorer: ExplorerTraits) -> str:
    """One line: the model, the composite, the sample shown and the class it explains."""
    sample = explorer.sample
    explained = explained_class(explorer, sample)
    return (
        f"LRP Explorer: {explorer.model_name} ({len(explorer.layers)} layers), "
        f"{explorer.composite or 'custom rules'}, sample {sample}"
        f"{f' as {explained}' if explained else ''}; the live view needs a running kernel"
    )


def explorer_figure(
    explorer: ExplorerTraits,
    sample: int,
    *,
    cmap: str = "bwr",
    scale_by: str = "percentile",
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Input (for image inputs) and relevance map of ``sample``, titled with the model and the
    composite, the explained class over the map, with a colour bar.

    Raises
    ------
    ValueError
        no relevance computed yet, an unknown colormap, ``scale_by`` or an out-of-range sample.
    """
    result = explorer.live.last_result
    if result is None:
        raise ValueError("the Explorer has no relevance to draw yet: fix the error shown")
    palette = colormap(cmap)  # raises on an unknown name before anything is drawn
    relevance = result.relevance
    if not 0 <= sample < relevance.shape[0]:
        raise ValueError(f"sample must be in [0, {relevance.shape[0] - 1}], got {sample}")
    values = relevance_map(relevance, sample)
    s = group_scale(values, scale_by) or 1.0  # s = 0: every value is 0, drawn at the middle
    images = display_images(explorer.live.inputs)
    show_input = images.shape[1] > 0
    figure = Figure(figsize=figsize or ((6.4, 3.2) if show_input else (6.4, 2.0)))
    figure.set_layout_engine("constrained")
    axes: Sequence = figure.subplots(1, 2 if show_input else 1, squeeze=False)[0]
    if show_input:
        axes[0].imshow(images[sample])
        axes[0].set_title(f"input {sample}", fontsize=9)
    ax = axes[-1]
    shown = ax.imshow(values, cmap=palette, vmin=-s, vmax=s, aspect=None if show_input else "auto")
    explained = explained_class(explorer, sample)
    ax.set_title(f"relevance for {explained}" if explained else "relevance", fontsize=9)
    for each in axes:
        each.set_xticks([])
        each.set_yticks([])
    bar = figure.colorbar(shown, ax=ax, shrink=0.9, pad=0.02)
    bar.set_ticks([-s, 0.0, s])
    bar.set_ticklabels([f"-{s:.3g}", "0", f"+{s:.3g}"])
    bar.ax.tick_params(labelsize=7)
    composite = explorer.composite or "custom rules"
    figure.suptitle(f"{explorer.model_name} · {composite}", fontsize=10)
    figure.colorbars = [bar]
    return figure
