"""Jupyter widgets for explaining PyTorch models with Layer-wise Relevance Propagation.

``Explorer`` and ``Compare`` are imported lazily, so ``lrp_widgets.demo`` works without loading
the widget stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lrp_widgets.compare import Compare
    from lrp_widgets.explorer import Explorer

__all__ = ["Compare", "Explorer"]


def __getattr__(name: str) -> Any:
    if name == "Explorer":
        from lrp_widgets.explorer import Explorer

        return Explorer
    if name == "Compare":
        from lrp_widgets.compare import Compare

        return Compare
    raise AttributeError(f"module 'lrp_widgets' has no attribute {name!r}")
