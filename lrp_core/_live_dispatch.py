"""Backward side of a live explanation: one dispatching hook per leaf module and a term cache.

A ``DispatchHook`` is registered once on every leaf module. In the forward pass it keeps the
module's local graph (as a plain gradient would). In each backward pass it looks up the module's
*current* rule and asks it for the relevance, so changing rules needs no new forward pass.

Reuse across backward passes: the modified forwards of a ``BasicHook`` rule (its K terms, see
``lrp_core._relevance``) depend only on the module's input and parameters, never on the incoming
relevance. ``TermCache`` keeps them, with their graphs, per (module call, rule); a re-run then costs
one VJP per term. For the built-in rules, whose gradient mappers are linear in the relevance
(γ_k = R ⊙ φ_k(outputs)), the factors φ_k are cached too, so a re-run maps R with one product.
Cached work is valid as long as the forward graph is, and is dropped with it.

The formula below is ``lrp_core._relevance.basic_relevance`` with the terms supplied from the
cache, every graph retained (no create_graph support: live explanations are first order) and
VJPs of all-zero vectors skipped (exactly zero).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import torch

from . import rules
from ._hook_function import ModuleCall
from ._relevance import true_gradient, vanishes_for_zero_input
from .core import BasicHook, Hook
from .rules import Gamma

if TYPE_CHECKING:
    from collections.abc import Callable

_CACHEABLE = {BasicHook._relevance, Gamma._relevance}
#: built-in rules whose gradient mapper is R ⊙ φ_k(outputs), linear in the relevance R
LINEAR_MAPPER_RULES = (
    rules.Epsilon,
    rules.Norm,
    rules.ZPlus,
    rules.AlphaBeta,
    rules.Gamma,
    rules.ZBox,
    rules.Flat,
    rules.WSquare,
)


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


def _term(rule: BasicHook, call: ModuleCall, k: int) -> tuple[list, list | None]:
    """Modified inputs and outputs (with graph) of term k; outputs None if it provably vanishes."""
    if rule._identity_terms[k] and call.leaves is not None and call.outputs_unchanged():
        return call.leaves, call.outputs
    param_mod = rule.param_modifiers[k]
    with torch.no_grad():
        inputs = [rule.input_modifiers[k](x) for x in call.inputs]
    if (
        rule._weighted_terms[k]
        and vanishes_for_zero_input(call.module, param_mod)
        and not any(bool(x.any()) for x in inputs)
    ):
        return inputs, None
    inputs = [x.detach().requires_grad_() for x in inputs]
    with torch.enable_grad():
        with param_mod(call.module):
            outputs = call.rerun(inputs)
        outputs = [rule.output_modifiers[k](y) for y in outputs]
    return inputs, outputs


class TermCache:
    """Modified forwards (and rule views) per (module call, rule), the ``size`` latest per call."""

    def __init__(self, size: int = 2):
        self.size = max(int(size), 0)
        self._entries: dict[int, OrderedDict] = {}
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        """Forget everything (call this when the forward graph is replaced)."""
        self._entries = {}

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
    """Cached work of one (call, rule): the K terms and, for linear mappers, their factors."""

    __slots__ = ("terms", "factors")

    def __init__(self, terms: list):
        self.terms = terms
        self.factors: list | None = None


def _map(rule: BasicHook, grad: torch.Tensor, outs: tuple, n_terms: int) -> tuple:
    mapped = rule.gradient_mapper(grad, outs)
    if isinstance(mapped, torch.Tensor):
        mapped = (mapped,) * n_terms
    mapped = tuple(mapped)
    if len(mapped) != n_terms:
        raise RuntimeError(
            f"gradient_mapper returned {len(mapped)} tensors, but the rule has "
            f"{n_terms} modifier terms; return one tensor per term."
        )
    return mapped


def _gammas(rule: BasicHook, call: ModuleCall, grad_outputs: tuple, entry: _Terms) -> list:
    """γ[k][j] = gradient_mapper(R_j, outputs)[k]; for the built-in rules, whose mappers are
    R ⊙ φ_k(outputs), the factors φ_k = mapper(1, outputs) are computed once and cached."""
    n_terms = len(entry.terms)
    linear = type(rule) in LINEAR_MAPPER_RULES
    outs_per_output = [
        tuple(
            torch.zeros((), dtype=grad.dtype).expand(call.output_shapes[j])
            if ys is None
            else ys[j].detach()
            for _, ys in entry.terms
        )
        for j, grad in enumerate(grad_outputs)
    ]
    if not linear:
        per_output = [
            _map(rule, g, o, n_terms) for g, o in zip(grad_outputs, outs_per_output, strict=True)
        ]
    else:
        if entry.factors is None:
            entry.factors = [
                _map(rule, torch.ones_like(g), o, n_terms)
                for g, o in zip(grad_outputs, outs_per_output, strict=True)
            ]
        per_output = []
        for grad, factors in zip(grad_outputs, entry.factors, strict=True):
            products: dict[int, torch.Tensor] = {}  # terms sharing a factor share the product
            per_output.append(
                tuple(None if f is None else products.setdefault(id(f), grad * f) for f in factors)
            )
    return [[mapped[k] for mapped in per_output] for k in range(n_terms)]


def cached_basic_relevance(
    rule: BasicHook, call: ModuleCall, grad_outputs: tuple, cache: TermCache
) -> tuple:
    """The BasicHook formula for one call, with the modified forwards taken from ``cache``."""
    call.check_inputs_unchanged()
    n_terms = len(rule.input_modifiers)
    entry = cache.get(call, rule, lambda: _Terms([_term(rule, call, k) for k in range(n_terms)]))
    terms = entry.terms
    with torch.no_grad():
        gammas = _gammas(rule, call, grad_outputs, entry)
    term_inputs, term_grads = [], []
    for k, (inputs, outputs) in enumerate(terms):
        pairs = []
        if outputs is not None:
            # a VJP is linear in its vector, so an all-zero vector gives exactly zero: skip it
            # (the Gamma rule's z < 0 part after a ReLU, for example)
            pairs = [
                (y, g)
                for y, g in zip(outputs, gammas[k], strict=True)
                if g is not None and y.requires_grad and (n_terms == 1 or bool(g.any()))
            ]
        if pairs:
            grads = torch.autograd.grad(
                [y for y, _ in pairs],
                inputs,
                [g for _, g in pairs],
                retain_graph=True,
                allow_unused=True,
            )
            grads = [
                torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads, strict=True)
            ]
        else:
            grads = [torch.zeros((), dtype=x.dtype).expand(x.shape) for x in inputs]
        term_inputs.append([x.detach() for x in inputs])
        term_grads.append(grads)
    with torch.no_grad():
        return tuple(
            rule.reducer(tuple(x[i] for x in term_inputs), tuple(g[i] for g in term_grads))
            for i in range(len(call.inputs))
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
