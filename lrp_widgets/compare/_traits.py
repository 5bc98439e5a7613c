"""The synced traits of the Compare widget: what its page reads and writes."""

from __future__ import annotations

import traitlets

from lrp_widgets._base import LrpWidget

__all__ = ["CompareTraits"]


class CompareTraits(LrpWidget):
    """The state the Compare widget shares with its page; behaviour lives in ``Compare``.

    The display traits (``normalization``, ``scale_by``, ``reference``, ``cmap``, ``show``,
    ``sort``) are owned by the page and read by ``Compare.to_figure``.
    """

    columns = traitlets.List(traitlets.Dict()).tag(sync=True)
    """Columns in display order: ``{id, name, composite, params, overrides, config}`` each
    (``list`` of dict)."""
    presets = traitlets.List(traitlets.Unicode(), read_only=True).tag(sync=True)
    """Composite preset names a new column can use, and ``"Gradient"`` (``list`` of str,
    read-only)."""
    catalog = traitlets.Dict(read_only=True).tag(sync=True)
    """Rules by name with their parameter defaults (``dict``, read-only)."""
    palettes = traitlets.Dict(read_only=True).tag(sync=True)
    """Colormaps: name -> 768 RGB bytes (``dict``, read-only)."""
    images = traitlets.Dict(read_only=True).tag(sync=True)
    """The inputs as a uint8 ``[N, H, W, 3]`` array message (``dict``, read-only)."""
    masks = traitlets.Dict(read_only=True).tag(sync=True)
    """The masks as a uint8 ``[N, H, W]`` array message; ``{}`` if none (``dict``,
    read-only)."""
    heatmaps = traitlets.Dict().tag(sync=True)
    """``str(column id)`` -> float32 ``[N, C, H, W]`` array message with its ``generation``
    and ``request`` (``dict``)."""
    classes = traitlets.List(traitlets.Int()).tag(sync=True)
    """The class explained in each row (``list`` of int)."""
    class_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    """Names of the output classes (``list`` of str; default ``"0"``, ``"1"``...)."""
    predictions = traitlets.List().tag(sync=True)
    """Per row: ``[class, probability]`` of the top class (``list``)."""
    scores = traitlets.Dict().tag(sync=True)
    """Score name -> ``str(column id)`` -> one value per row, None where undefined
    (``dict``)."""
    score_info = traitlets.Dict(read_only=True).tag(sync=True)
    """Per score: ``label``, ``higher_is_better`` and ``description`` (``dict``, read-only)."""
    curves = traitlets.Dict().tag(sync=True)
    """``str(column id)`` -> MoRF/LeRF curves after ``compute_scores`` (``dict``)."""
    progress = traitlets.Dict().tag(sync=True)
    """``{task, done, total}`` of a long computation; ``{}`` when idle (``dict``)."""
    normalization = traitlets.Enum(("grid", "row", "cell"), default_value="grid").tag(sync=True)
    """One colour scale for the ``"grid"``, each ``"row"`` or each ``"cell"`` (``str``, default
    ``"grid"``)."""
    scale_by = traitlets.Enum(("percentile", "max"), default_value="percentile").tag(sync=True)
    """A group's colour scale s: the 99th ``"percentile"`` of ``|value|`` (larger values take the
    end colours) or the ``"max"`` (``str``, default ``"percentile"``)."""
    reference = traitlets.Int(-1).tag(sync=True)
    """Column id of the difference reference; -1: none (``int``, default -1)."""
    cmap = traitlets.Unicode("bwr").tag(sync=True)
    """Colormap name, one of ``lrp_core.cmap.CMAPS`` (``str``, default ``"bwr"``)."""
    show = traitlets.Enum(("heatmap", "overlay"), default_value="heatmap").tag(sync=True)
    """Cells show the ``"heatmap"`` or an ``"overlay"`` on the input (``str``, default
    ``"heatmap"``)."""
    sort = traitlets.Dict().tag(sync=True)
    """Row order: ``{score, column, descending}``, or ``{}`` for input order (``dict``)."""
    compute_count = traitlets.Int(0).tag(sync=True)
    """Backward passes run so far (``int``, default 0)."""
