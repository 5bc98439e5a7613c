"""The colour scale of a relevance map in the static figures, the same maths as the page.

The scale ``s`` of a group of values is, with ``scale_by="percentile"`` (default), element
``floor(0.99 * (n - 1))`` of the ``n`` finite ``|values|`` sorted ascending (the page's
``Math.floor(0.99 * (n - 1))``; ``np.percentile(|v|, 99, method="lower")``), so one extreme
pixel does not wash out the rest; with ``scale_by="max"`` the largest finite ``|value|``. A value
``v`` is drawn with ``clim = (-s, s)`` in a colormap of :data:`lrp_core.cmap.CMAPS`.
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import ListedColormap

from lrp_core.cmap import CMAPS

__all__ = ["SCALE_BY", "SCALE_QUANTILE", "colormap", "group_scale"]

SCALE_BY = ("percentile", "max")
SCALE_QUANTILE = 0.99  # the quantile of |value| used by scale_by="percentile"


def group_scale(values: np.ndarray, scale_by: str = "percentile") -> float:
    """Scale ``s`` of one group of values (any shape); 0 when no value is finite.

    Parameters
    ----------
    values : numpy.ndarray
        The values (any shape; non-finite ones are ignored).
    scale_by : {"percentile", "max"}
        The 99th percentile of the finite ``|values|`` (see the module docstring) or their
        largest.

    Raises
    ------
    ValueError
        an unknown ``scale_by``.
    """
    if scale_by not in SCALE_BY:
        raise ValueError(f"scale_by must be one of {SCALE_BY}, got {scale_by!r}")
    values = np.asarray(values, dtype=np.float64)
    magnitudes = np.abs(values[np.isfinite(values)])
    if magnitudes.size == 0:
        return 0.0
    if scale_by == "max":
        return float(magnitudes.max())
    k = int(np.floor(SCALE_QUANTILE * (magnitudes.size - 1)))
    return float(np.partition(magnitudes, k)[k])


def colormap(name: str) -> ListedColormap:
    """The ``lrp_core.cmap`` colormap ``name`` as a matplotlib colormap (256 entries).

    Raises
    ------
    ValueError
        an unknown colormap name (the message lists the known ones).
    """
    if name not in CMAPS:
        raise ValueError(f"unknown colormap {name!r}; choose one of {sorted(CMAPS)}")
    return ListedColormap(CMAPS[name].palette() / 255.0, name=name)
