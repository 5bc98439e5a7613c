"""Rule comparison at data-set scale: attribute and score whole data sets into an HDF5 store.

>>> from lrp_core.datasets import attribute_dataset
>>> store = attribute_dataset(
...     model, dataset, {"eps": "EpsilonPlusFlat", "tuned": explorer.config}, "runs/shapes",
...     target="label", float16=True)
>>> store.files["eps"]        # runs/shapes/eps.attribution.h5, ViRelAy's layout

One call runs every configuration over every sample (in-process, or on Ray with
``engine="ray"``), computes the scores of ``lrp_core.evaluation`` per sample, and streams the
results to one HDF5 file per configuration (layout: ``lrp_core.datasets._store``). A run stopped
at any point resumes when called again with the same arguments.

Importing this package needs torch and numpy only; ``h5py`` (the store) and ``ray`` (the Ray
engine) are imported when used, with an error naming the extra to install
(``pip install 'lrp-widgets[h5py]'``, ``'lrp-widgets[ray]'``).
"""

from ._attribute import ENGINES, AttributionStore, attribute_dataset
from ._configs import RuleConfig, resolve_configs
from ._errors import DatasetAttributionError, MissingExtraError, StoreMismatchError
from ._scores import SCORES
from ._store import SUFFIX

__all__ = [
    "ENGINES",
    "SCORES",
    "SUFFIX",
    "AttributionStore",
    "DatasetAttributionError",
    "MissingExtraError",
    "RuleConfig",
    "StoreMismatchError",
    "attribute_dataset",
    "resolve_configs",
]
