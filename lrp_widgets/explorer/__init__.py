"""The Explorer widget: one model's layer tree with per-layer LRP rules tuned live.

Public names: :class:`Explorer`, :class:`UnknownLayerError` (a layer name that is not a module
of the model) and :func:`composite_key` (the registered name of a composite preset).
"""

from lrp_widgets._checks import UnknownLayerError, composite_key
from lrp_widgets.explorer._widget import Explorer

__all__ = ["Explorer", "UnknownLayerError", "composite_key"]
