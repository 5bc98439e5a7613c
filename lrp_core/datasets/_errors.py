"""Exceptions of data-set attribution, and the lazy import of its optional extras."""

from __future__ import annotations

import importlib
from types import ModuleType


class DatasetAttributionError(ValueError):
    """A bad argument of ``attribute_dataset``; the message names it and says how to fix it."""


class StoreMismatchError(DatasetAttributionError):
    """The store already holds (part of) a run with other settings; it is never overwritten
    silently: remove it, choose another directory, or pass ``overwrite=True``."""


class MissingExtraError(ImportError):
    """An optional dependency (``h5py`` or ``ray``) is not installed."""


_EXTRAS = {"h5py": "h5py", "ray": "ray", "ray.data": "ray"}


def optional_import(module: str, purpose: str) -> ModuleType:
    """Import ``module`` (``"h5py"``, ``"ray"`` or ``"ray.data"``) or raise ``MissingExtraError``
    naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        extra = _EXTRAS[module]
        raise MissingExtraError(
            f"{purpose} needs {extra!r}, which is not installed: pip install 'lrp-widgets[{extra}]'"
            f" (or pip install {extra if extra != 'ray' else 'ray[data]'})"
        ) from error
