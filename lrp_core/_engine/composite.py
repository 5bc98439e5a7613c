"""Composite: hook templates mapped onto the modules of a model, after canonizers."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch

from .handles import RemovableHandleList

if TYPE_CHECKING:
    from .protocols import HookTemplate


class Composite:
    """Registers copies of hook templates on a model's modules, after applying canonizers.

    ``module_map(ctx, name, module)`` returns a hook template or None; ``ctx`` is a dict shared
    by the calls of one ``register``. Subclasses only supply ``module_map``. ``unmatched`` lists
    (name, type name) of the leaf modules that got no hook in the last ``register``.
    """

    def __init__(self, module_map: Callable | None = None, canonizers: Sequence | None = None):
        if module_map is not None:
            self.module_map = module_map
        self.canonizers = list(canonizers or [])
        self.handles = RemovableHandleList()
        self.hooks: list[HookTemplate] = []
        self.canonizer_instances: list = []
        self.unmatched: list[tuple[str, str]] = []

    @property
    def hook_refs(self) -> list[HookTemplate]:
        """The registered hook instances (the reference library's name for ``hooks``), a copy."""
        return list(self.hooks)

    def module_map(self, ctx: dict, name: str, module: torch.nn.Module) -> HookTemplate | None:
        """Return the hook template for ``module`` (None: plain gradient)."""
        return None

    def register(self, module: torch.nn.Module) -> None:
        """Apply the canonizers, then hook every module the map matches."""
        self.remove()
        try:
            for canonizer in self.canonizers:
                self.canonizer_instances.extend(canonizer.apply(module))
            ctx: dict = {}
            for name, child in module.named_modules():
                template = self.module_map(ctx, name, child)
                if template is None:
                    if next(child.children(), None) is None:
                        self.unmatched.append((name, type(child).__name__))
                    continue
                hook = template.copy()
                self.hooks.append(hook)
                self.handles.append(hook.register(child))
        except BaseException:
            self.remove()
            raise

    def remove(self) -> None:
        """Remove all hooks, then undo the canonizers in reverse order."""
        try:
            self.handles.remove()
        finally:
            self.hooks = []
            self.unmatched = []
            instances, self.canonizer_instances = self.canonizer_instances, []
            for instance in reversed(instances):
                instance.remove()

    def context(self, module: torch.nn.Module) -> CompositeContext:
        """Register on ``module`` for the duration of a ``with`` block; always removed on exit."""
        return CompositeContext(module, self)

    @contextmanager
    def inactive(self) -> Iterator[None]:
        """Within the block every hook of this composite is off (plain gradient)."""
        states = [(hook, hook.active) for hook in self.hooks]
        try:
            for hook, _ in states:
                hook.active = False
            yield
        finally:
            for hook, active in states:
                hook.active = active


class CompositeContext:
    """Context manager that registers ``composite`` on ``module`` and removes it on exit.

    ``with CompositeContext(module, composite) as modified:`` registers on entry and yields
    ``module``; on exit (also after an exception, which is not suppressed) the composite's hooks
    and canonizers are removed. ``Composite.context(module)`` returns one.
    """

    def __init__(self, module: torch.nn.Module, composite: Composite) -> None:
        self.module = module
        self.composite = composite

    def __enter__(self) -> torch.nn.Module:
        self.composite.register(self.module)
        return self.module

    def __exit__(self, *exc_info: Any) -> bool:
        self.composite.remove()
        return False
