"""Backward side of a live explanation: one dispatching hook per leaf module and a term cache.

A ``DispatchHook`` is registered once on every leaf module. In the forward pass it keeps the
module's local graph (as a plain gradient would). In each backward pass it looks up the module's
*current* rule and asks it for the relevance, so changing rules needs no new forward pass.

Reuse across backward passes: the modified forwards of a ``BasicHook`` rule (its K terms, see
``lrp_core._engine.relevance``) depend only on the module's input and parameters, never on the
incoming relevance. ``TermCache`` keeps them, with their graphs, per (module call, rule); a
re-run then costs one VJP per term. For the built-in rules, whose gradient mappers are linear in
the relevance (γ_k = R ⊙ φ_k(outputs)), the factors φ_k are cached too, so a re-run maps R with
one product.
Cached work is valid as long as the forward graph is, and is dropped with it.

The formula itself is ``lrp_core._engine.relevance.basic_relevance``, called with the terms
from the cache, every graph retained (live explanations are first order) and VJPs of all-zero
vectors skipped (exactly zero). On plain Linear and convolution layers, rules whose reducer is a
signed sum skip autograd: ``lrp_core.live.linear_terms.LinearTerms`` keeps the factors, term
inputs and modified weights and maps R in closed form (one transposed convolution per distinct
factor), and the cache keeps rule-independent partial outputs for the layers being edited
(``partials``).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import torch

from .. import rules
from .._engine import (
    GradientMap,
    ModuleCall,
    basic_relevance,
    map_relevance,
    modified_forwards,
    true_gradient,
)
from ..core import BasicHook, Hook
from ..rules import Gamma
from .linear_terms import LinearTerms, applies

if TYPE_CHECKING:
    from collections.abc import Callable

_CACHEABLE = {BasicHook._relevance, Gamma._relevance}
#: built-in rules whose gradient mapper is R ⊙ φ_k(outputs), linear in the relevance R: all the
#: built-in LRP rules (a new one whose mapper is not linear in R must be left out here)
LINEAR_MAPPER_RULES = rules.LRP_RULES


#: module calls whose partial outputs the cache keeps at a time
PARTIAL_CALLS = 4


class Superseded(Exception):
    """Raised inside the backward pass to stop a computation that a newer request replaced."""


class DispatchHook(Hook):
    """Keeps a leaf module's local graph; in the backward pass ``relevance(name, call, grads)``
    of its owner computes the relevance with the module's current rule."""

    def __init__(self, name: str, relevance: Callable[[str, ModuleCall, tuple], tuple]):
        super().__init__()
        self.name = name
        self._owner_relevance = relevance

    def copy(self) -> DispatchHook:
        return DispatchHook(self.name, self._owner_relevance)

    def _needs_local_graph(self, module: torch.nn.Module) -> bool:
        return True

    def _relevance(self, call: ModuleCall, grad_outputs: tuple) -> tuple:
        return self._owner_relevance(self.name, call, grad_outputs)


def cacheable(rule: Hook) -> bool:
    """Whether ``rule`` is a BasicHook rule whose modified forwards the cache may keep."""
    return isinstance(rule, BasicHook) and type(rule)._relevance in _CACHEABLE


def rule_view(call: ModuleCall, rule: Hook) -> ModuleCall:
    """A copy of ``call`` prepared by ``rule._keep`` (which may drop or add what it keeps)."""
    view = object.__new__(ModuleCall)
    for slot in ModuleCall.__slots__:
        if slot != "__weakref__":
            setattr(view, slot, getattr(call, slot))
    view.stored = {}
    view.hook = rule
    if call.outputs is not None:
        rule._keep(view, [t.detach() for t in call.outputs])
    return view


class TermCache:
    """Modified forwards (and rule views) per (module call, rule), the ``size`` latest per call."""

    def __init__(self, size: int = 2):
        self.size = max(int(size), 0)
        self._entries: dict[int, OrderedDict] = {}
        self._partials: OrderedDict[int, dict] = OrderedDict()
        self._seen: set[int] = set()
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        """Forget everything (call this when the forward graph is replaced)."""
        self._entries = {}
        self._partials = OrderedDict()
        self._seen = set()

    def partials(self, call: ModuleCall) -> dict | None:
        """Rule-independent partial outputs of ``call`` (see ``lrp_core.live.linear_terms``).

        None the first time a call asks (most layers never change their rule, so keeping theirs
        would only cost memory); from the second time on a dict, kept for the ``PARTIAL_CALLS``
        calls that asked last (the layers being edited).
        """
        key = id(call)
        if not self.size or key not in self._seen:
            self._seen.add(key)
            return None
        partials = self._partials.pop(key, None)
        self._partials[key] = {} if partials is None else partials
        while len(self._partials) > PARTIAL_CALLS:
            self._partials.popitem(last=False)
        return self._partials[key]

    def get(self, call: ModuleCall, rule: Hook, make: Callable[[], Any]) -> Any:
        """The cached value for (call, rule), made by ``make()`` on a miss."""
        entries = self._entries.setdefault(id(call), OrderedDict())
        key = (type(rule), rule)
        try:
            value = entries[key]
        except (KeyError, TypeError):
            self.misses += 1
            value = make()
            if self.size:
                try:
                    entries[key] = value
                except TypeError:  # unhashable rule: never cached
                    return value
                while len(entries) > self.size:
                    entries.popitem(last=False)
            return value
        self.hits += 1
        entries.move_to_end(key)
        return value


class _Terms:
    """Cached work of one (call, rule): the K terms and, for linear mappers, their factors φ_k
    per output index."""

    __slots__ = ("terms", "factors")

    def __init__(self, terms: list):
        self.terms = terms
        self.factors: dict[int, tuple] = {}


def _factor_map(rule: BasicHook, entry: _Terms) -> GradientMap:
    """A gradient map for mappers R ⊙ φ_k(outputs): φ_k = mapper(1, outputs) is computed once
    per output and cached in ``entry``; then γ_k = R ⊙ φ_k (terms sharing a factor share γ)."""

    def gradient_map(j: int, grad: torch.Tensor, outputs: tuple) -> tuple:
        factors = entry.factors.get(j)
        if factors is None:
            factors = entry.factors[j] = map_relevance(rule, torch.ones_like(grad), outputs)
        products: dict[int, torch.Tensor] = {}
        for f in factors:
            if f is not None and id(f) not in products:
                products[id(f)] = grad * f
        return tuple(None if f is None else products[id(f)] for f in factors)

    return gradient_map


def cached_basic_relevance(
    rule: BasicHook, call: ModuleCall, grad_outputs: tuple, cache: TermCache
) -> tuple:
    """The BasicHook formula for one call, with the modified forwards taken from ``cache``."""
    call.check_inputs_unchanged()  # before the terms are made and cached
    linear = type(rule) in LINEAR_MAPPER_RULES

    def make() -> LinearTerms | _Terms:
        if linear and applies(rule, call):
            return LinearTerms(rule, call, cache.partials(call))
        return _Terms(modified_forwards(rule, call))

    entry = cache.get(call, rule, make)
    with torch.no_grad():
        if type(entry) is LinearTerms:
            return (entry.relevance(grad_outputs[0]),)
        return basic_relevance(
            rule,
            call,
            grad_outputs,
            terms=entry.terms,
            gradient_map=_factor_map(rule, entry) if linear else None,
            retain=True,
            skip_zero=True,
        )


def rule_relevance(
    rule: Hook | None, call: ModuleCall, grad_outputs: tuple, cache: TermCache
) -> tuple:
    """Relevance at the inputs of one module call under ``rule`` (None: plain gradient)."""
    if rule is None:
        return true_gradient(call, grad_outputs)
    if cacheable(rule):
        return cached_basic_relevance(rule, call, grad_outputs, cache)
    view = cache.get(call, rule, lambda: rule_view(call, rule))
    with torch.no_grad():
        return tuple(rule._relevance(view, grad_outputs))
