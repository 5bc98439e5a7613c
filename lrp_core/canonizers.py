"""Canonizers: temporary, output-preserving rewrites of a model that make LRP rules applicable.

A canonizer's ``apply(root_module)`` finds the places it rewrites, registers one instance per
place and returns those instances; each instance's ``remove()`` undoes its rewrite exactly (every
parameter, buffer and attribute is the original object again, so the ``state_dict`` is
bit-identical). Composites apply canonizers before registering rules and remove them in reverse
order afterwards. Rewrites are made on module instances only, never on classes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from ._batch_norm_merge import MergeBatchNorm, NamedMergeBatchNorm, SequentialMergeBatchNorm
from ._canonizer_base import Canonizer, CanonizerOrderError, apply_all, check_unchanged

_MISSING = object()
_MODULE_STORES = ("_parameters", "_buffers", "_modules")


class AttributeCanonizer(Canonizer):
    """Set attributes on module instances (e.g. a replacement ``forward`` and helper modules).

    Parameters
    ----------
    attribute_map:
        ``attribute_map(name, module)`` returns a dict of attributes to set on ``module``, or
        ``None`` to leave it alone. Values are set with ``setattr``, so ``nn.Module`` values
        become child modules. ``remove()`` restores every original attribute object in its
        original place and deletes those that did not exist on the instance (so a class
        attribute such as the class's ``forward`` is visible again).

    A registered instance holds ``module`` and ``attribute_keys`` (the names it set; None until
    ``register``).
    """

    def __init__(
        self, attribute_map: Callable[[str, nn.Module], dict[str, Any] | None] | None = None
    ) -> None:
        if attribute_map is not None and not callable(attribute_map):
            raise TypeError("AttributeCanonizer: attribute_map must be callable(name, module)")
        self.attribute_map = attribute_map
        self.module: nn.Module | None = None
        self.attribute_keys: list[str] | None = None
        self._originals: dict[str, tuple[str | None, Any, bool]] = {}
        self._installed: dict[str, Any] = {}

    def copy(self) -> AttributeCanonizer:
        return type(self)(self.attribute_map)

    def apply(self, root_module: nn.Module) -> list[Canonizer]:
        """Register one instance per module for which ``attribute_map`` returns attributes."""
        if self.attribute_map is None:
            raise TypeError("AttributeCanonizer: no attribute_map given")

        def step(name: str, module: nn.Module) -> list[Canonizer]:
            attributes = self.attribute_map(name, module)
            if not attributes:
                return []
            instance = AttributeCanonizer(self.attribute_map)
            instance.register(module, attributes)
            return [instance]

        named = list(root_module.named_modules())
        return apply_all((lambda n=n, m=m: step(n, m) for n, m in named))

    def register(self, module: nn.Module, attributes: dict[str, Any]) -> None:
        """Set ``attributes`` on ``module``, remembering what was there."""
        if self.module is not None:
            raise RuntimeError("AttributeCanonizer instance is already registered; use copy()")
        self.module, self.attribute_keys = module, list(attributes)
        try:
            for key, value in attributes.items():
                self._originals[key] = _locate_attribute(module, key)
                setattr(module, key, value)
                self._installed[key] = _locate_attribute(module, key)[1]
        except BaseException:
            self.remove()
            raise

    def remove(self) -> None:
        """Put back every original attribute (same object, same place) and drop the added ones.

        Raises ``CanonizerOrderError`` (changing nothing) while a canonizer applied later still
        rewrites one of them.
        """
        for key, installed in self._installed.items():
            current = _locate_attribute(self.module, key)[1]
            place = f"attribute {key!r} of {type(self.module).__name__}"
            check_unchanged(type(self).__name__, place, installed, current)
        self._installed = {}
        if self.module is not None:
            for key, original in reversed(list(self._originals.items())):
                _restore_attribute(self.module, key, original)
        self.module, self._originals = None, {}


def _locate_attribute(module: nn.Module, key: str) -> tuple[str | None, Any, bool]:
    """Where ``key`` lives on the instance: (store or None if absent, value, non-persistent)."""
    non_persistent = key in module.__dict__.get("_non_persistent_buffers_set", ())
    for store in _MODULE_STORES:
        values = module.__dict__.get(store)
        if values is not None and key in values:
            return store, values[key], non_persistent
    if key in module.__dict__:
        return "__dict__", module.__dict__[key], non_persistent
    return None, _MISSING, non_persistent


def _restore_attribute(module: nn.Module, key: str, original: tuple[str | None, Any, bool]):
    store, value, non_persistent = original
    # Remove the key from every place except its original one, then reassign it there in place
    # (reassigning an existing dict key keeps the order of parameters, buffers and modules).
    for other in (*_MODULE_STORES, "__dict__"):
        if other == store:
            continue
        values = module.__dict__ if other == "__dict__" else module.__dict__.get(other)
        if values is not None:
            values.pop(key, None)
    if store == "__dict__":
        module.__dict__[key] = value
    elif store is not None:
        module.__dict__[store][key] = value
    persistence = module.__dict__.get("_non_persistent_buffers_set")
    if persistence is not None:
        if non_persistent:
            persistence.add(key)
        else:
            persistence.discard(key)


# --------------------------------------------------------------------------------------------
# grouping


class CompositeCanonizer(Canonizer):
    """Apply several canonizers in the given order (removal happens in reverse order).

    Parameters
    ----------
    canonizers:
        The canonizers to apply, first to last.
    """

    def __init__(self, canonizers: Sequence[Canonizer]) -> None:
        canonizers = list(canonizers)
        for canonizer in canonizers:
            if not callable(getattr(canonizer, "apply", None)):
                raise TypeError(
                    "CompositeCanonizer: every element must be a canonizer with apply(module), "
                    f"got {type(canonizer).__name__}"
                )
        self.canonizers = canonizers
        self._instances: list[Canonizer] = []

    def copy(self) -> CompositeCanonizer:
        return CompositeCanonizer([canonizer.copy() for canonizer in self.canonizers])

    def apply(self, root_module: nn.Module) -> list[Canonizer]:
        """Apply each canonizer in order; return all registered instances in that order."""
        steps = (lambda c=c: list(c.apply(root_module)) for c in self.canonizers)
        self._instances = apply_all(steps)
        return list(self._instances)

    def register(self) -> None:
        """Nothing to do: a composite canonizer registers its members through ``apply``."""

    def remove(self) -> None:
        """Remove the instances of the last ``apply`` in reverse order."""
        for instance in reversed(self._instances):
            instance.remove()
        self._instances = []


__all__ = [
    "AttributeCanonizer",
    "Canonizer",
    "CanonizerOrderError",
    "CompositeCanonizer",
    "MergeBatchNorm",
    "NamedMergeBatchNorm",
    "SequentialMergeBatchNorm",
    "apply_all",
]
