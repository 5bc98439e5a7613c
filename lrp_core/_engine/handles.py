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
    """A list of handles whose ``remove()`` removes them all (in order) and empties the list.

    A handle whose ``remove()`` raises does not stop the others: every handle is removed, then
    the first error is raised again.
    """

    def remove(self) -> None:  # type: ignore[override]
        handles = list(self)
        self.clear()
        first: BaseException | None = None
        for handle in handles:
            try:
                handle.remove()
            except BaseException as error:  # noqa: BLE001 - re-raised below, after the rest
                first = first or error
        if first is not None:
            raise first
