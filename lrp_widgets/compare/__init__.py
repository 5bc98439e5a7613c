"""The Compare widget: a grid of relevance maps, rows = inputs, columns = rule configurations.

Public names: :class:`Compare` and :class:`ColumnError` (a column configuration or change that
cannot be used; the message names the column).
"""

from lrp_widgets.compare._configs import ColumnError
from lrp_widgets.compare._widget import Compare

__all__ = ["ColumnError", "Compare"]
