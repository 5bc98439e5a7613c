"""Handles that undo registrations."""

from __future__ import annotations

from typing import Any


class RemovableHandle:
    """Handle that calls ``remove()`` of the object it holds, once."""

    def __init__(self, instance: Any):
        self.instance = instance

    def remove(self) -> None:
        if self.instance is not None:
            instance, self.instance = self.instance, None
            instance.remove()


class RemovableHandleList(list):
    """A list of handles whose ``remove()`` removes them all (in order) and empties the list."""

    def remove(self) -> None:  # type: ignore[override]
        for handle in self:
            handle.remove()
        self.clear()
