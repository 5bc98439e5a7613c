"""Captured calls whose rule is chosen in the backward pass (live explanations).

``deferred_call`` runs one captured call so that its backward asks ``choose(name)`` for the op
rule *at backward time*: the rule's local graph (the call re-run on detached operands, with the
rule's autograd functions) is built once per rule and kept, so a backward pass with an unchanged
rule costs one VJP, and a changed rule one local re-run of this call only. The values the model
sees are those of the call, whatever the rule (op rules change gradients, never values).

``report(call, rule, entering, leaving)`` receives, after each backward through the call,
``(value, gradient)`` pairs at its outputs and at its relevance-carrying operands, whose products
are the relevance there (the gradient × input form of the engine, see ``functions``).

Which tensors carry relevance is decided in the forward pass, by the rules of that pass: a call
whose rule then stops relevance (CP-LRP's softmax, a gate) gives a constant output, and products
downstream treat it as one (no split). Changing such a rule later changes the gradients through the
call, not that structure.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

from .capture import ACTIVATION_TAG
from .operations import OpCall

#: rule graphs kept per captured call (the rule of the forward pass and the latest other one)
KEPT_RULES = 2


def _rule_key(rule: Any) -> Any:
    if rule is None:
        return None
    try:
        key = (type(rule), tuple(sorted(rule.hyperparameters().items())))
        hash(key)
        return key
    except TypeError:
        return (type(rule), id(rule))


def _local_operands(call: OpCall, carrying: list[bool]) -> list[torch.Tensor]:
    """Detached copies of the operands; those that carry relevance require grad again."""
    local = []
    for tensor, carried in zip(call.operands, carrying, strict=True):
        copy = tensor.detach()
        if carried:
            copy.requires_grad_()
        if getattr(tensor, ACTIVATION_TAG, False):
            setattr(copy, ACTIVATION_TAG, True)
        local.append(copy)
    return local


class _RuleGraphs:
    """The local graphs of one captured call, one per rule (see the module docstring)."""

    def __init__(self, call: OpCall):
        self.call = call
        # decided in the forward pass: later, the model's parameters require grad again
        self.carrying = call.carrying
        self.graphs: OrderedDict[Any, tuple[list, Any]] = OrderedDict()

    def graph(self, rule: Any) -> tuple[list, Any]:
        """``(carrying local operands, output)`` of the call run under ``rule``."""
        key = _rule_key(rule)
        if key in self.graphs:
            self.graphs.move_to_end(key)
            return self.graphs[key]
        operands = _local_operands(self.call, self.carrying)
        local = dataclasses.replace(self.call, operands=operands)
        with torch.enable_grad():
            output = local.run() if rule is None else rule.apply(local)
        entry = ([t for t in operands if t.requires_grad], output)
        self.graphs[key] = entry
        while len(self.graphs) > KEPT_RULES:
            self.graphs.popitem(last=False)
        return entry


def _tensors(output: Any) -> list[torch.Tensor]:
    return [t for t in tree_flatten(output)[0] if isinstance(t, torch.Tensor)]


class _Deferred(torch.autograd.Function):
    @staticmethod
    def forward(ctx, backward: Callable, values: tuple, *operands: torch.Tensor):
        ctx.run_backward = backward
        return tuple(v.detach().clone() for v in values)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor):
        return (None, None, *ctx.run_backward(grads))


def deferred_call(
    call: OpCall,
    choose: Callable[[str], Any],
    report: Callable[[OpCall, Any, tuple, tuple], None] | None = None,
) -> Any:
    """Run ``call`` with the rule ``choose(call.name)`` gives in each backward pass (None: the
    plain gradient); see the module docstring."""
    graphs = _RuleGraphs(call)
    _, output = graphs.graph(choose(call.name))
    if not any(t.requires_grad for t in _tensors(output)):
        return output  # the rule of the forward pass stops relevance here (e.g. CP-LRP's softmax)
    carrying = [t for t, carried in zip(call.operands, graphs.carrying, strict=True) if carried]

    def backward(grads: tuple) -> tuple:
        rule = choose(call.name)
        leaves, local = graphs.graph(rule)
        pairs = [(o, g) for o, g in zip(_tensors(local), grads, strict=True) if o.requires_grad]
        found = torch.autograd.grad(
            [o for o, _ in pairs],
            leaves,
            [torch.zeros_like(o) if g is None else g for o, g in pairs],
            retain_graph=True,
            allow_unused=True,
        )
        found = tuple(
            torch.zeros_like(x) if g is None else g for x, g in zip(leaves, found, strict=True)
        )
        if report is not None:
            entering = tuple((o, g) for o, g in pairs if g is not None)
            report(call, rule, entering, tuple(zip(leaves, found, strict=True)))
        return found

    flat, spec = tree_flatten(output)
    positions = [i for i, t in enumerate(flat) if isinstance(t, torch.Tensor)]
    values = _Deferred.apply(backward, tuple(flat[i] for i in positions), *carrying)
    for i, value in zip(positions, values, strict=True):
        flat[i] = value
    return tree_unflatten(flat, spec)
