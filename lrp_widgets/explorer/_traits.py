"""The synced traits of the Explorer widget: what its page reads and writes."""

from __future__ import annotations

import traitlets

from lrp_widgets._base import LrpWidget

__all__ = ["ExplorerTraits"]


class ExplorerTraits(LrpWidget):
    """The state the Explorer widget shares with its page; behaviour lives in ``Explorer``."""

    model_name = traitlets.Unicode(read_only=True).tag(sync=True)
    """Class name of the model (``str``, read-only)."""
    total_params = traitlets.Int(read_only=True).tag(sync=True)
    """Number of parameter elements of the model (``int``, read-only)."""
    layers = traitlets.List(traitlets.Dict(), read_only=True).tag(sync=True)
    """Modules below the root, in tree order (``list`` of dict, read-only; see
    ``lrp_widgets._payload.layer_rows``)."""
    rules = traitlets.Dict().tag(sync=True)
    """Effective rule of every leaf: ``{name: {rule, params, origin}}`` (``dict``)."""
    catalog = traitlets.Dict(read_only=True).tag(sync=True)
    """Rules by name with their parameter defaults (``dict``, read-only)."""
    composites = traitlets.List(traitlets.Unicode(), read_only=True).tag(sync=True)
    """Registered composite preset names (``list`` of str, read-only)."""
    composite = traitlets.Unicode("", read_only=True).tag(sync=True)
    """Current composite preset, ``""`` for none or a custom one (``str``, read-only)."""
    palettes = traitlets.Dict(read_only=True).tag(sync=True)
    """Colormaps: name -> 768 RGB bytes (``dict``, read-only)."""
    images = traitlets.Dict(read_only=True).tag(sync=True)
    """The inputs as a uint8 ``[N, H, W, 3]`` array message (``dict``, read-only)."""
    heatmap = traitlets.Dict().tag(sync=True)
    """Relevance as a float32 ``[N, C, H, W]`` array message with its ``generation``,
    ``request`` and ``classes`` (``dict``)."""
    predictions = traitlets.List().tag(sync=True)
    """Per sample: the top classes as ``[class, probability]`` (``list``)."""
    class_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    """Names of the output classes (``list`` of str; default ``"0"``, ``"1"``...)."""
    health = traitlets.List().tag(sync=True)
    """Per layer, in backward order: relevance totals and conservation violations (``list``)."""
    selected = traitlets.List(traitlets.Unicode()).tag(sync=True)
    """Selected layers, in order (``list`` of str, default ``[]``)."""
    target = traitlets.Int(None, allow_none=True).tag(sync=True)
    """Class explained for every sample; None: each sample's predicted class (``int`` or None,
    default None)."""
    sample = traitlets.Int(0).tag(sync=True)
    """Index of the sample shown (``int``, default 0)."""
    focus_layer = traitlets.Unicode("").tag(sync=True)
    """Leaf whose relevance map is shown; ``""`` for none (``str``, default ``""``)."""
    layer_map = traitlets.Dict().tag(sync=True)
    """Channel-summed relevance at ``focus_layer``'s output, float32 ``[N, 1, H, W]`` (or
    ``[N, 1, 1, F]``), with its top channels per sample; ``{}`` without a focus layer
    (``dict``)."""
    compute_ms = traitlets.Float(0.0).tag(sync=True)
    """Duration of the last backward pass in milliseconds (``float``, default 0)."""
    compute_count = traitlets.Int(0).tag(sync=True)
    """Relevance computations run so far (``int``, default 0)."""
