"""What the engine needs of a rule: the structural types that ``lrp_core.core``'s hooks fulfil.

The engine sits below ``lrp_core.core`` (``Hook`` and ``BasicHook`` are built on it), so it names
the hooks it works with by these protocols instead of importing them; that keeps the dependency
one-way, type annotations included.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import torch

if TYPE_CHECKING:
    from .handles import RemovableHandle
    from .modifiers import ParamMod


class HookTemplate(Protocol):
    """A rule a ``Composite`` copies onto modules (``lrp_core.core.Hook``)."""

    active: bool

    def copy(self) -> HookTemplate:
        """A fresh hook with the same hyperparameters."""
        ...

    def register(self, module: torch.nn.Module) -> RemovableHandle:
        """Hook ``module``; the handle removes the hook."""
        ...


class TermRule(Protocol):
    """A rule of K modifier triples, a gradient mapper and a reducer (``BasicHook``)."""

    input_modifiers: Sequence[Callable]
    param_modifiers: Sequence[ParamMod]
    output_modifiers: Sequence[Callable]
    gradient_mapper: Callable
    reducer: Callable
    _weighted_terms: tuple[bool, ...]
    _identity_terms: tuple[bool, ...]
    _term_signs: tuple[float, ...] | None


class GammaRule(Protocol):
    """The Gamma rule as ``gamma.gamma_relevance`` reads it (``lrp_core.rules.Gamma``)."""

    param_modifiers: Sequence[ParamMod]
    _stabilize: Callable[[torch.Tensor], torch.Tensor]
