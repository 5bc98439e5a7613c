"""The canonizer base: ``Canonizer``, applying several at once, and the removal-order check.

Public through :mod:`lrp_core.canonizers`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any

from torch import nn


class CanonizerOrderError(RuntimeError):
    """A canonizer removed while a canonizer applied after it still rewrites the same place.

    Nothing is changed then: remove the later canonizer first (reverse order of application).
    """


def check_unchanged(owner: str, place: str, installed: Any, current: Any) -> None:
    """Raise ``CanonizerOrderError`` unless ``current`` is the object ``owner`` installed."""
    if current is not installed:
        raise CanonizerOrderError(
            f"{owner}: {place} was rewritten again by a canonizer applied after this one, which "
            "is still applied; nothing was changed. Remove canonizers in reverse order of "
            "application (the last applied first)"
        )


class Canonizer(ABC):
    """Base of all canonizers.

    ``apply(root_module)`` registers copies of the canonizer on the parts of ``root_module`` it
    applies to and returns them; ``register(...)`` rewrites one part; ``remove()`` undoes it.
    """

    @abstractmethod
    def apply(self, root_module: nn.Module) -> list[Canonizer]:
        """Rewrite every matching part of ``root_module``; return the registered instances.

        The base implementation registers nothing and returns an empty list, so cooperative
        subclasses can extend ``super().apply(root_module)``.
        """
        return []

    @abstractmethod
    def register(self, *args: Any, **kwargs: Any) -> None:
        """Rewrite one part of a model."""

    @abstractmethod
    def remove(self) -> None:
        """Undo ``register`` exactly; calling it twice is harmless."""

    def copy(self) -> Canonizer:
        """Return a fresh, unregistered canonizer with the same settings."""
        return type(self)()


def apply_all(register_steps: Iterable[Callable[[], list[Canonizer]]]) -> list[Canonizer]:
    """Run canonizer registration steps in order; if one raises, undo the earlier ones and re-raise.

    Each step returns the instances it registered. Returns all of them, in registration order.
    """
    instances: list[Canonizer] = []
    try:
        for step in register_steps:
            instances.extend(step())
    except BaseException:
        for instance in reversed(instances):
            instance.remove()
        raise
    return instances
