"""The mechanism behind every hook: one local graph per module call, joined by one autograd node.

A hooked module call works like this:

1. The forward pre-hook swaps each tensor input that requires grad for a detached stand-in (a clone
   for in-place modules). Hooks that read the module's own gradient get stand-ins that require grad,
   so the module builds a small *local* graph; all other hooks get plain tensors and no graph.
2. The forward hook (also called when the module raised, to clean up) joins the original inputs to
   the module's output(s) through one ``_HookFunction`` node that keeps a ``ModuleCall`` record.
3. In the backward pass that node hands the record and the incoming gradients to the hook, which
   returns one gradient per original input. Nothing is computed that the hook does not ask for.

Each call gets its own record, so modules used twice in one forward are handled per call.
"""

from __future__ import annotations

import functools
import inspect
import weakref
from typing import Any

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

from .gradients import second_order_gradient
from .module_call import ModuleCall, ModuleHook, bypassing, is_float_tensor

_PENDING_ATTR = "_lrp_core_pending"


class _Pending:
    """Tag carried by the stand-in inputs from the pre-hook to the forward hook."""

    __slots__ = ("call", "__weakref__")

    def __init__(self, call: ModuleCall):
        self.call = call


def pre_forward(hook: ModuleHook, module: torch.nn.Module, args: tuple, kwargs: dict):
    """Forward pre-hook: swap tensor inputs that require grad for detached stand-ins."""
    if not hook.active or bypassing() or not torch.is_grad_enabled():
        return None
    flat, spec = tree_flatten((args, kwargs))
    slots = [i for i, obj in enumerate(flat) if isinstance(obj, torch.Tensor) and obj.requires_grad]
    if not slots:
        return None
    call = ModuleCall(hook, module, spec, flat, slots)
    needs_graph = hook._needs_local_graph(module)
    in_place = bool(getattr(module, "inplace", False))
    tag = _Pending(call)
    new_flat = list(flat)
    leaves = []
    for slot, stand_in in zip(slots, call.inputs, strict=True):
        if needs_graph:
            stand_in = stand_in.detach().requires_grad_()
            leaves.append(stand_in)
        if in_place:
            stand_in = stand_in.clone()
        setattr(stand_in, _PENDING_ATTR, tag)
        new_flat[slot] = stand_in
    call.leaves = leaves if needs_graph else None
    # the stand-ins replace the originals in the re-run arguments as well
    call.flat_args = [obj if i not in slots else None for i, obj in enumerate(flat)]
    return tree_unflatten(new_flat, spec)


def post_forward(hook: ModuleHook, module: torch.nn.Module, args: tuple, kwargs: dict, output: Any):
    """Forward hook: join the original inputs to the output through one ``_HookFunction`` node.

    Also runs when the module raised (``always_call``); then it only removes the tags.
    """
    if bypassing():  # a re-run inside a backward pass: the pre-hook tagged nothing
        return None
    call = None
    for obj in tree_flatten((args, kwargs))[0]:
        if isinstance(obj, torch.Tensor):
            tag = obj.__dict__.pop(_PENDING_ATTR, None)
            if tag is not None and tag.call.hook is hook and call is None:
                call = tag.call
    if call is None or output is None:
        return None

    hook.stored_tensors = call.stored
    replaced = _call_forward(hook, module, call, output)
    if replaced is not None:
        output = replaced
    flat_out, out_spec = tree_flatten(output)
    positions = [i for i, obj in enumerate(flat_out) if is_float_tensor(obj)]
    if not positions:
        return None
    local = [flat_out[i] for i in positions]
    detached = [t.detach() for t in local]
    if call.leaves is not None:
        call.outputs = local
        call.output_versions = [t._version for t in local]
    call.output_shapes = [t.shape for t in local]
    originals = call.originals
    hook._keep(call, detached)
    hook._calls.add(call)
    joined = _HookFunction.apply(_Carrier(call, detached), *originals)
    del originals
    if not isinstance(joined, tuple):
        joined = (joined,)
    for position, tensor in zip(positions, joined, strict=True):
        flat_out[position] = tensor
    return tree_unflatten(flat_out, out_spec)


def _call_forward(hook: ModuleHook, module: torch.nn.Module, call: ModuleCall, output: Any) -> Any:
    """``hook.forward(module, args, output)`` with the call's original arguments, or
    ``hook.forward(module, args, kwargs, output)`` for a forward written for Zennit 1.0."""
    flat = list(call.flat_args)
    for slot, tensor in zip(call.slots, call.originals, strict=True):
        flat[slot] = tensor
    args, kwargs = tree_unflatten(flat, call.spec)
    forward = hook.forward
    bound = inspect.ismethod(forward)
    function = forward.__func__ if bound else forward
    try:
        with_keywords = _takes_keyword_arguments(function, bound)
    except TypeError:  # an unhashable callable: not cached
        with_keywords = _takes_keyword_arguments.__wrapped__(function, bound)
    if with_keywords:
        return forward(module, tuple(args), kwargs, output)
    return forward(module, tuple(args), output)


@functools.lru_cache(maxsize=1024)
def _takes_keyword_arguments(function: Any, bound: bool) -> bool:
    """Whether a hook's ``forward`` has Zennit 1.0's four parameters (module, args, kwargs,
    output), besides ``self`` when ``bound``, rather than three (module, input, output)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # no signature: the three-argument form
        return False
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    positional = [parameter for parameter in parameters if parameter.kind in kinds]
    return len(positional) - int(bound) == 4


class _Carrier:
    """Hands the record and the outputs to ``_HookFunction.forward`` without making them inputs."""

    __slots__ = ("call", "outputs")

    def __init__(self, call: ModuleCall, outputs: list[torch.Tensor]):
        self.call = call
        self.outputs = outputs


class _HookFunction(torch.autograd.Function):
    """One autograd node per hooked call; its backward asks the hook for the input gradients."""

    @staticmethod
    def forward(ctx, carrier: _Carrier, *originals: torch.Tensor):
        ctx.call = carrier.call
        # autograd frees this token after the node's last backward (or with the graph); the record
        # then drops its tensors, so memory is released as early as with a plain graph
        token = torch.empty(0)
        ctx.save_for_backward(token)
        weakref.finalize(token, carrier.call.release)
        outputs = tuple(carrier.outputs)
        carrier.outputs = None
        return outputs

    @staticmethod
    def backward(ctx, *grad_outputs: torch.Tensor):
        call = ctx.call
        _ = ctx.saved_tensors  # raises the usual error when the graph was already freed
        if call.released:
            raise RuntimeError(
                f"The relevance record of {type(call.module).__name__} was already freed; run the "
                "forward pass again (or pass retain_graph=True to backpropagate twice)."
            )
        if call.graph_built:
            # differentiating a relevance graph built with create_graph=True: the path from the
            # relevance back to the input goes through this node and needs the true Jacobian
            return (None, *second_order_gradient(call, tuple(grad_outputs)))
        grads = call.hook._relevance(call, tuple(grad_outputs))
        if torch.is_grad_enabled():
            call.graph_built = True
        return (None, *grads)


class CallRegistry:
    """Weak references to the records of a hook, so ``Hook.remove`` can clear them."""

    def __init__(self):
        self._calls: weakref.WeakSet[ModuleCall] = weakref.WeakSet()

    def add(self, call: ModuleCall) -> None:
        self._calls.add(call)

    def clear(self) -> None:
        for call in list(self._calls):
            call.stored.clear()
        self._calls = weakref.WeakSet()
